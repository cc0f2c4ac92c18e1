package storage

import (
	"fmt"
	"strconv"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
)

func names(res *ListResult) []string {
	out := make([]string, len(res.Items))
	for i, o := range res.Items {
		p := o.(*corev1.Pod)
		out[i] = p.Namespace + "/" + p.Name
	}
	return out
}

func seedList(f *fixture) {
	for i := 0; i < 10; i++ {
		ns := "ns1"
		if i%2 == 1 {
			ns = "ns2"
		}
		app := "web"
		if i%3 == 0 {
			app = "db"
		}
		phase := corev1.PodRunning
		if i >= 7 {
			phase = corev1.PodPending
		}
		f.create(newPod(ns, fmt.Sprintf("p%02d", i), map[string]string{"app": app}, fmt.Sprintf("node%d", i%2), phase))
	}
}

func TestListSelectors(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := ctxT(t)
	seedList(f)
	for _, rv := range []string{"", "0"} {
		for _, exact := range []bool{false, true} {
			opts := ListOptions{ResourceVersion: rv}
			if exact {
				// Exact reads go to etcd: compare both paths on the same data.
				cur, err := f.b.CurrentRevision(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if rv == "0" {
					continue
				}
				opts = ListOptions{ResourceVersion: strconv.FormatInt(cur, 10), ResourceVersionMatch: metav1.ResourceVersionMatchExact}
			}
			all, err := f.s.List(ctx, f.prefix, opts)
			if err != nil {
				t.Fatal(err)
			}
			if got := names(all); len(got) != 10 || got[0] != "ns1/p00" || got[9] != "ns2/p09" {
				t.Fatalf("rv=%q exact=%v: all = %v", rv, exact, got)
			}
			if all.ResourceVersion == 0 {
				t.Fatal("list rv is 0")
			}
			ns2, err := f.s.List(ctx, f.prefix+"ns2", opts)
			if err != nil {
				t.Fatal(err)
			}
			if got := names(ns2); fmt.Sprint(got) != "[ns2/p01 ns2/p03 ns2/p05 ns2/p07 ns2/p09]" {
				t.Fatalf("ns2 = %v", got)
			}
			o := opts
			o.Predicate = Predicate{
				Label: labels.SelectorFromSet(labels.Set{"app": "web"}),
				Field: fields.AndSelectors(fields.OneTermEqualSelector("spec.nodeName", "node1"), fields.OneTermEqualSelector("status.phase", "Running")),
			}
			sel, err := f.s.List(ctx, f.prefix, o)
			if err != nil {
				t.Fatal(err)
			}
			// web: 1,2,4,5,7,8; node1: odd; Running: <7 -> p01, p05
			if got := names(sel); fmt.Sprint(got) != "[ns2/p01 ns2/p05]" {
				t.Fatalf("rv=%q exact=%v selected = %v", rv, exact, got)
			}
		}
	}
}

func TestListPagination(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := ctxT(t)
	seedList(f)
	cases := []struct {
		pred Predicate
		want string
	}{
		{Predicate{}, "[ns1/p00 ns1/p02 ns1/p04 ns1/p06 ns1/p08 ns2/p01 ns2/p03 ns2/p05 ns2/p07 ns2/p09]"},
		{Predicate{Label: labels.SelectorFromSet(labels.Set{"app": "web"})}, "[ns1/p02 ns1/p04 ns1/p08 ns2/p01 ns2/p05 ns2/p07 ns2/zz-late0]"},
	}
	for ci, tc := range cases {
		var got []string
		opts := ListOptions{Limit: 3, Predicate: tc.pred}
		var firstRV int64
		pages := 0
		for {
			res, err := f.s.List(ctx, f.prefix, opts)
			if err != nil {
				t.Fatal(err)
			}
			pages++
			if firstRV == 0 {
				firstRV = res.ResourceVersion
				// A write after the first page must not show up in later
				// ones: every page comes from the first page's snapshot.
				f.create(newPod("ns2", fmt.Sprintf("zz-late%d", ci), map[string]string{"app": "web"}, "", ""))
			} else if res.ResourceVersion != firstRV {
				t.Fatalf("page rv %d, want the first page's %d", res.ResourceVersion, firstRV)
			}
			if len(res.Items) > 3 {
				t.Fatalf("page of %d items with limit 3", len(res.Items))
			}
			got = append(got, names(res)...)
			if tc.pred.Label == nil && res.Continue != "" {
				if res.RemainingItemCount == nil || *res.RemainingItemCount != int64(10-len(got)) {
					t.Fatalf("remaining = %v after %d items", res.RemainingItemCount, len(got))
				}
			}
			if res.Continue == "" {
				break
			}
			opts.Continue = res.Continue
		}
		if fmt.Sprint(got) != tc.want {
			t.Fatalf("case %d: paged = %v, want %v", ci, got, tc.want)
		}
		if pages < 2 {
			t.Fatalf("case %d: only %d pages", ci, pages)
		}
	}

	// Limit larger than the set: one page, no token. A consistent read, since
	// "0" may answer before the cache has seen the last write above.
	res, err := f.s.List(ctx, f.prefix+"ns2/", ListOptions{Limit: 100, ResourceVersion: ""})
	if err != nil || res.Continue != "" || len(res.Items) != 7 {
		t.Fatalf("big limit: %v %v", res, err)
	}
	if _, err := f.s.List(ctx, f.prefix, ListOptions{Continue: "not-a-token"}); !apierrors.IsBadRequest(err) {
		t.Fatalf("bad token: %v, want BadRequest", err)
	}
	tok, _ := encodeContinue(f.prefix+"../x", f.prefix, 5)
	if _, err := f.s.List(ctx, f.prefix, ListOptions{Continue: tok}); !apierrors.IsBadRequest(err) {
		t.Fatalf("escaping token: %v, want BadRequest", err)
	}
}

func TestListResourceVersionSemantics(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := ctxT(t)
	a := f.create(newPod("ns1", "a", nil, "", ""))
	rvA, _ := strconv.ParseInt(a.ResourceVersion, 10, 64)
	f.create(newPod("ns1", "b", nil, "", ""))

	// Exact at a's revision shows the past.
	res, err := f.s.List(ctx, f.prefix, ListOptions{ResourceVersion: a.ResourceVersion, ResourceVersionMatch: metav1.ResourceVersionMatchExact})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(names(res)) != "[ns1/a]" || res.ResourceVersion != rvA {
		t.Fatalf("exact list = %v at %d", names(res), res.ResourceVersion)
	}
	// NotOlderThan a's revision shows at least as new.
	res, err = f.s.List(ctx, f.prefix, ListOptions{ResourceVersion: a.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	if res.ResourceVersion < rvA {
		t.Fatalf("not-older-than list at %d < %d", res.ResourceVersion, rvA)
	}
	// A consistent list sees a write made just before it.
	f.create(newPod("ns1", "c", nil, "", ""))
	res, err = f.s.List(ctx, f.prefix, ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(names(res)) != "[ns1/a ns1/b ns1/c]" {
		t.Fatalf("consistent list = %v", names(res))
	}
	// A consistent list also catches up with writes to other resources.
	other := newFixture(t)
	o := other.create(newPod("x", "y", nil, "", ""))
	res, err = f.s.List(ctx, f.prefix, ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.ResourceVersion < mustInt(t, o.ResourceVersion) {
		t.Fatalf("consistent list at %d, older than another resource's write at %s", res.ResourceVersion, o.ResourceVersion)
	}
	// Far-future versions time out like kube-apiserver.
	fb := newFixture(t, WithConsistencyTimeout(300e6))
	_, err = fb.s.List(ctx, fb.prefix, ListOptions{ResourceVersion: "999999999"})
	if !apierrors.IsTimeout(err) || !apierrors.HasStatusCause(err, metav1.CauseTypeResourceVersionTooLarge) {
		t.Fatalf("future rv: %v, want Timeout with ResourceVersionTooLarge", err)
	}
	_, err = f.s.List(ctx, f.prefix, ListOptions{ResourceVersion: "999999999", ResourceVersionMatch: metav1.ResourceVersionMatchExact})
	if !apierrors.IsTimeout(err) {
		t.Fatalf("future exact rv: %v, want Timeout", err)
	}
	if _, err := f.s.List(ctx, f.prefix, ListOptions{ResourceVersion: "abc"}); !apierrors.IsBadRequest(err) {
		t.Fatalf("bad rv: %v", err)
	}
}

func mustInt(t testing.TB, s string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
