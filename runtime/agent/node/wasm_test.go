package node

import (
	"context"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/wasmkube/wasmkube/internal/testcluster"
)

func handlerNames(n *corev1.Node) []string {
	var out []string
	for _, h := range n.Status.RuntimeHandlers {
		out = append(out, h.Name)
	}
	return out
}

func TestAdvertisesWasmAndKeepsItThroughHeartbeats(t *testing.T) {
	_, client := testcluster.Start(t)
	a, _, _, _ := start(t, client, Config{
		Name: "edge-wasm", Wasm: true, WasmEngineVersion: "wazero v1.12.0",
		StatusReportInterval: time.Nanosecond, // write on every evaluation
	})
	waitRegistered(t, a)
	n := getNode(t, client, "edge-wasm")
	if n.Labels[WasmLabel] != "true" {
		t.Errorf("label %s = %q, want true", WasmLabel, n.Labels[WasmLabel])
	}
	if n.Annotations[WasmEngineAnnotation] != "wazero v1.12.0" {
		t.Errorf("annotation %s = %q", WasmEngineAnnotation, n.Annotations[WasmEngineAnnotation])
	}
	if got := handlerNames(n); !reflect.DeepEqual(got, []string{"", "wasm"}) {
		t.Fatalf("runtime handlers %q, want the default and wasm", got)
	}
	for _, h := range n.Status.RuntimeHandlers {
		f := h.Features
		if f == nil || f.RecursiveReadOnlyMounts == nil || f.UserNamespaces == nil || *f.RecursiveReadOnlyMounts || *f.UserNamespaces {
			t.Errorf("handler %q features %+v: want both stated false", h.Name, f)
		}
	}

	// A user's label beside ours; then heartbeats keep both the label and
	// the handlers.
	patch := []byte(`{"metadata":{"labels":{"team":"field"}}}`)
	if _, err := client.CoreV1().Nodes().Patch(context.Background(), "edge-wasm", types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	beat := findCondition(n, corev1.NodeReady).LastHeartbeatTime
	err := wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, 20*time.Second, true, func(context.Context) (bool, error) {
		n = getNode(t, client, "edge-wasm")
		c := findCondition(n, corev1.NodeReady)
		return c != nil && c.LastHeartbeatTime.After(beat.Time), nil
	})
	if err != nil {
		t.Fatalf("no heartbeat after the first: %v", err)
	}
	if got := handlerNames(n); !reflect.DeepEqual(got, []string{"", "wasm"}) {
		t.Errorf("after a heartbeat, runtime handlers %q", got)
	}
	if n.Labels["team"] != "field" || n.Labels[WasmLabel] != "true" {
		t.Errorf("after a heartbeat, labels %v", n.Labels)
	}
}

func TestNodeWithoutWasmDropsOnlyItsOwnKeys(t *testing.T) {
	_, client := testcluster.Start(t)
	existing := &corev1.Node{ObjectMeta: metav1.ObjectMeta{
		Name:        "edge-plain",
		Labels:      map[string]string{"team": "field", WasmLabel: "true"},
		Annotations: map[string]string{"note": "keep", WasmEngineAnnotation: "wazero v0"},
	}}
	if _, err := client.CoreV1().Nodes().Create(context.Background(), existing, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	a, _, _, _ := start(t, client, Config{Name: "edge-plain"})
	waitRegistered(t, a)
	n := getNode(t, client, "edge-plain")
	if _, ok := n.Labels[WasmLabel]; ok || n.Labels["team"] != "field" {
		t.Errorf("labels %v: want %s gone and team kept", n.Labels, WasmLabel)
	}
	if _, ok := n.Annotations[WasmEngineAnnotation]; ok || n.Annotations["note"] != "keep" {
		t.Errorf("annotations %v: want %s gone and note kept", n.Annotations, WasmEngineAnnotation)
	}
	if got := handlerNames(n); !reflect.DeepEqual(got, []string{""}) {
		t.Errorf("runtime handlers %q, want only the default", got)
	}
}

func TestMetaPatch(t *testing.T) {
	got := metaPatch(
		map[string]string{"a": "1", "b": "old", "owned": "x", "other": "y"},
		map[string]string{"a": "1", "b": "new", "c": "3"},
		[]string{"owned", "absent"},
	)
	b, _ := json.Marshal(got)
	if want := `{"b":"new","c":"3","owned":null}`; string(b) != want {
		t.Errorf("metaPatch = %s, want %s", b, want)
	}
}
