package storage

import (
	"context"
	"encoding/json"
	"strconv"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
)

func TestCreateGet(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := ctxT(t)
	in := newPod("ns1", "a", map[string]string{"app": "web"}, "node1", corev1.PodRunning)
	in.ResourceVersion = "12345" // must not be stored
	out := f.create(in)
	if in.ResourceVersion != "12345" {
		t.Fatalf("Create modified the caller's object: rv %q", in.ResourceVersion)
	}
	if out.ResourceVersion == "" || out.ResourceVersion == "12345" {
		t.Fatalf("created rv = %q, want the etcd revision", out.ResourceVersion)
	}

	// The stored value is JSON with TypeMeta and without resourceVersion.
	resp, err := testClient.Get(ctx, f.key("ns1", "a"))
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("raw get: %v %v", resp, err)
	}
	var raw map[string]any
	if err := json.Unmarshal(resp.Kvs[0].Value, &raw); err != nil {
		t.Fatalf("stored value is not JSON: %v", err)
	}
	if raw["kind"] != "Pod" || raw["apiVersion"] != "v1" {
		t.Fatalf("stored TypeMeta = %v/%v", raw["apiVersion"], raw["kind"])
	}
	if _, ok := raw["metadata"].(map[string]any)["resourceVersion"]; ok {
		t.Fatal("resourceVersion was stored in the value")
	}
	if strconv.FormatInt(resp.Kvs[0].ModRevision, 10) != out.ResourceVersion {
		t.Fatalf("rv %s != ModRevision %d", out.ResourceVersion, resp.Kvs[0].ModRevision)
	}

	got, err := f.s.Get(ctx, f.key("ns1", "a"))
	if err != nil {
		t.Fatal(err)
	}
	gp := got.(*corev1.Pod)
	if gp.ResourceVersion != out.ResourceVersion || gp.Spec.NodeName != "node1" || gp.Labels["app"] != "web" {
		t.Fatalf("get returned %+v", gp)
	}

	_, err = f.s.Create(ctx, f.key("ns1", "a"), in)
	if !apierrors.IsAlreadyExists(err) {
		t.Fatalf("second create: %v, want AlreadyExists", err)
	}
	if st := err.(apierrors.APIStatus).Status(); st.Details.Name != "a" || st.Details.Kind != "pods" {
		t.Fatalf("error details = %+v", st.Details)
	}
	if _, err := f.s.Get(ctx, f.key("ns1", "missing")); !apierrors.IsNotFound(err) {
		t.Fatalf("get missing: %v, want NotFound", err)
	}
	if _, err := f.s.Get(ctx, "/registry/other/x"); !apierrors.IsBadRequest(err) {
		t.Fatalf("get outside prefix: %v, want BadRequest", err)
	}
}

func TestGuaranteedUpdate(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := ctxT(t)
	key := f.key("ns1", "a")
	created := f.create(newPod("ns1", "a", nil, "", corev1.PodPending))

	up, err := f.s.GuaranteedUpdate(ctx, key, func(existing runtime.Object) (runtime.Object, error) {
		p := existing.(*corev1.Pod)
		if p.ResourceVersion != created.ResourceVersion {
			t.Errorf("tryUpdate saw rv %s, want %s", p.ResourceVersion, created.ResourceVersion)
		}
		p.Status.Phase = corev1.PodRunning
		return p, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	updated := up.(*corev1.Pod)
	if updated.ResourceVersion == created.ResourceVersion || updated.Status.Phase != corev1.PodRunning {
		t.Fatalf("update result rv=%s phase=%s", updated.ResourceVersion, updated.Status.Phase)
	}

	// No change: no write, same version.
	same, err := f.s.GuaranteedUpdate(ctx, key, func(existing runtime.Object) (runtime.Object, error) {
		return existing, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if rvOf(t, same) != updated.ResourceVersion {
		t.Fatalf("no-op update changed rv %s -> %s", updated.ResourceVersion, rvOf(t, same))
	}

	// A result built from a stale version conflicts.
	_, err = f.s.GuaranteedUpdate(ctx, key, func(existing runtime.Object) (runtime.Object, error) {
		stale := created.DeepCopy()
		stale.Spec.NodeName = "n2"
		return stale, nil
	})
	if !apierrors.IsConflict(err) {
		t.Fatalf("stale update: %v, want Conflict", err)
	}
	// tryUpdate's own error is returned as is.
	refusal := apierrors.NewForbidden(f.s.(*store).cfg.GroupResource, "a", nil)
	if _, err = f.s.GuaranteedUpdate(ctx, key, func(runtime.Object) (runtime.Object, error) { return nil, refusal }); err != refusal {
		t.Fatalf("tryUpdate error = %v, want it unchanged", err)
	}
	if _, err := f.s.GuaranteedUpdate(ctx, f.key("ns1", "nope"), func(o runtime.Object) (runtime.Object, error) { return o, nil }); !apierrors.IsNotFound(err) {
		t.Fatalf("update missing: %v, want NotFound", err)
	}
}

// Concurrent read-modify-write cycles must not lose updates: the CAS retries
// each loser on the winner's value.
func TestGuaranteedUpdateConcurrent(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := ctxT(t)
	key := f.key("ns1", "counter")
	f.create(newPod("ns1", "counter", map[string]string{"n": "0"}, "", ""))
	const writers = 20
	var wg sync.WaitGroup
	tries := make([]int, writers)
	for i := 0; i < writers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := f.s.GuaranteedUpdate(ctx, key, func(existing runtime.Object) (runtime.Object, error) {
				tries[i]++
				p := existing.(*corev1.Pod)
				n, _ := strconv.Atoi(p.Labels["n"])
				p.Labels["n"] = strconv.Itoa(n + 1)
				return p, nil
			})
			if err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	got, err := f.s.Get(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if n := got.(*corev1.Pod).Labels["n"]; n != strconv.Itoa(writers) {
		t.Fatalf("counter = %s, want %d", n, writers)
	}
}

func TestDelete(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := ctxT(t)
	key := f.key("ns1", "a")
	created := f.create(newPod("ns1", "a", nil, "", ""))

	refused := apierrors.NewConflict(f.s.(*store).cfg.GroupResource, "a", context.Canceled)
	_, err := f.s.Delete(ctx, key, func(existing runtime.Object) error {
		if rvOf(t, existing) != created.ResourceVersion {
			t.Errorf("precondition saw rv %s", rvOf(t, existing))
		}
		return refused
	})
	if err != refused {
		t.Fatalf("refused delete: %v", err)
	}
	if _, err := f.s.Get(ctx, key); err != nil {
		t.Fatalf("object gone after a refused delete: %v", err)
	}
	del, err := f.s.Delete(ctx, key, nil)
	if err != nil {
		t.Fatal(err)
	}
	delRV, _ := strconv.ParseInt(rvOf(t, del), 10, 64)
	createdRV, _ := strconv.ParseInt(created.ResourceVersion, 10, 64)
	if delRV <= createdRV {
		t.Fatalf("deleted object rv %d, want the deletion revision > %d", delRV, createdRV)
	}
	if _, err := f.s.Get(ctx, key); !apierrors.IsNotFound(err) {
		t.Fatalf("get after delete: %v", err)
	}
	if _, err := f.s.Delete(ctx, key, nil); !apierrors.IsNotFound(err) {
		t.Fatalf("second delete: %v, want NotFound", err)
	}
}
