package apiserver

import (
	"encoding/json"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	"github.com/wasmkube/wasmkube/control/defaults"
	"github.com/wasmkube/wasmkube/control/validation"
)

var podKind = corev1.SchemeGroupVersion.WithKind("Pod")

const seedPod = `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","labels":{"app":"web"}},"spec":{"containers":[{"name":"c","image":"busybox","ports":[{"containerPort":8080}]}]}}`

// admit runs what the server runs on a decoded object before storing it. An
// object that passes validation must survive a round trip through JSON
// unchanged, or the server would store something other than it validated.
func admit(t *testing.T, obj runtime.Object) {
	defaults.Apply(obj)
	if errs := validation.Validate(obj); len(errs) > 0 {
		return
	}
	data, err := json.Marshal(obj)
	if err != nil {
		t.Fatalf("a valid object does not encode: %v", err)
	}
	again := &corev1.Pod{}
	if _, err := decodeStrict(data, again, podKind); err != nil {
		t.Fatalf("a valid object does not decode again: %v\n%s", err, data)
	}
	if errs := validation.Validate(again); len(errs) > 0 {
		t.Fatalf("a valid object is invalid after a round trip: %v\n%s", errs, data)
	}
}

// FuzzDecodeBody feeds arbitrary request bodies through decoding, field
// validation, defaulting and validation: nothing may panic, and what is
// accepted must stay valid.
func FuzzDecodeBody(f *testing.F) {
	f.Add([]byte(seedPod), "application/json", "Strict")
	f.Add([]byte("apiVersion: v1\nkind: Pod\nmetadata: {name: y}\nspec: {containers: [{name: c, image: i}]}\n"), "application/yaml", "Warn")
	f.Add([]byte(`{"kind":"Pod","spec":{"containers":[{"name":"c","imagee":"x"}]}}`), "application/json", "")
	f.Add([]byte(`{"apiVersion":"apps/v1","kind":"Pod"}`), "application/json", "Ignore")
	f.Add(append(append([]byte{}, protobufMagic...), 0x0a, 0x02), protobufMediaType, "")
	f.Fuzz(func(t *testing.T, body []byte, contentType, directive string) {
		obj := &corev1.Pod{}
		var strictErrs []error
		if contentType == protobufMediaType {
			if err := decodeProtobuf(body, obj, podKind); err != nil {
				return
			}
		} else {
			data, err := toJSON(body, contentType)
			if err != nil {
				return
			}
			if strictErrs, err = decodeStrict(data, obj, podKind); err != nil {
				return
			}
		}
		if _, err := applyFieldValidation(strictErrs, directive, podKind); err != nil {
			return
		}
		admit(t, obj)
	})
}

// FuzzPatch applies arbitrary patches of each kind to a valid pod.
func FuzzPatch(f *testing.F) {
	f.Add(uint8(0), []byte(`[{"op":"replace","path":"/spec/containers/0/image","value":"nginx"}]`))
	f.Add(uint8(1), []byte(`{"metadata":{"labels":{"tier":"web"}}}`))
	f.Add(uint8(2), []byte(`{"spec":{"containers":[{"name":"c","image":"nginx"},{"name":"d","image":"x"}]}}`))
	f.Add(uint8(2), []byte(`{"spec":{"containers":[{"$patch":"delete","name":"c"}]}}`))
	f.Add(uint8(1), []byte(`{"spec":null}`))
	kinds := []types.PatchType{types.JSONPatchType, types.MergePatchType, types.StrategicMergePatchType}
	f.Fuzz(func(t *testing.T, kind uint8, patch []byte) {
		existing := &corev1.Pod{}
		if err := json.Unmarshal([]byte(seedPod), existing); err != nil {
			t.Fatal(err)
		}
		p := &patcher{kind: kinds[int(kind)%len(kinds)], patch: patch}
		obj, _, err := patchObject(p, existing, func() runtime.Object { return &corev1.Pod{} }, podKind, "Strict")
		if err != nil {
			return
		}
		admit(t, obj)
	})
}
