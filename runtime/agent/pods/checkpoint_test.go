package pods

import (
	"os"
	"path/filepath"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestCheckpoints(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "checkpoints")
	c := newCheckpoints(dir)
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "a", Namespace: "ns", UID: "uid-a", ResourceVersion: "1"},
		Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyAlways}}
	if err := c.save(pod); err != nil {
		t.Fatal(err)
	}
	// Unchanged: not written again.
	if err := os.Remove(c.path(pod.UID)); err != nil {
		t.Fatal(err)
	}
	if err := c.save(pod); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(c.path(pod.UID)); !os.IsNotExist(err) {
		t.Fatalf("an unchanged pod was written again: %v", err)
	}
	pod.ResourceVersion = "2"
	if err := c.save(pod); err != nil {
		t.Fatal(err)
	}
	// A torn or foreign file is skipped, not fatal.
	if err := os.WriteFile(filepath.Join(dir, "uid-b.json"), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	loaded, errs := newCheckpoints(dir).load()
	if len(loaded) != 1 || loaded[0].UID != "uid-a" || loaded[0].ResourceVersion != "2" || loaded[0].Spec.RestartPolicy != corev1.RestartPolicyAlways {
		t.Fatalf("loaded %+v", loaded)
	}
	if len(errs) != 1 {
		t.Errorf("errors %v, want one for the torn file", errs)
	}
	lister, err := cachedLister(loaded)
	if err != nil {
		t.Fatal(err)
	}
	if p, err := lister.Pods("ns").Get("a"); err != nil || p.UID != "uid-a" {
		t.Errorf("cached lister: %v, %v", p, err)
	}
	if err := c.remove(pod.UID); err != nil {
		t.Fatal(err)
	}
	if err := c.remove(pod.UID); err != nil {
		t.Errorf("removing twice: %v", err)
	}
	if uids, err := c.uids(); err != nil || len(uids) != 1 || uids[0] != "uid-b" {
		t.Errorf("uids after remove: %v, %v", uids, err)
	}
	if tmp, _ := filepath.Glob(filepath.Join(dir, ".tmp-*")); len(tmp) != 0 {
		t.Errorf("temporary files left: %v", tmp)
	}
}
