package storage

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
)

// Tokens have kube-apiserver's shape: base64url JSON {v, rv, start}, start
// relative to the listed prefix.
func TestContinueTokenFormat(t *testing.T) {
	tok, err := encodeContinue("/registry/pods/ns1/b\x00", "/registry/pods/", 42)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	if m["v"] != "meta.k8s.io/v1" || m["rv"] != float64(42) || m["start"] != "ns1/b\x00" {
		t.Fatalf("token = %s", raw)
	}
	key, rv, err := decodeContinue(tok, "/registry/pods/")
	if err != nil || key != "/registry/pods/ns1/b\x00" || rv != 42 {
		t.Fatalf("decoded %q %d %v", key, rv, err)
	}
	for _, bad := range []string{
		"%%%",
		base64.RawURLEncoding.EncodeToString([]byte(`{"v":"other","rv":1,"start":"a"}`)),
		base64.RawURLEncoding.EncodeToString([]byte(`{"v":"meta.k8s.io/v1","rv":0,"start":"a"}`)),
		base64.RawURLEncoding.EncodeToString([]byte(`{"v":"meta.k8s.io/v1","rv":1,"start":"../secrets/x"}`)),
	} {
		if _, _, err := decodeContinue(bad, "/registry/pods/"); !errors.Is(err, errInvalidContinue) {
			t.Fatalf("token %q accepted: %v", bad, err)
		}
	}
	if _, err := encodeContinue("/other/x", "/registry/pods/", 1); err == nil {
		t.Fatal("encoded a key outside the prefix")
	}
}

func TestWatchFutureResourceVersion(t *testing.T) {
	t.Parallel()
	f := newFixture(t, WithConsistencyTimeout(300*time.Millisecond))
	w, err := f.s.Watch(ctxT(t), f.prefix, WatchOptions{ResourceVersion: "999999999"})
	if err != nil {
		t.Fatal(err)
	}
	ev := next(t, w)
	st, ok := ev.Object.(*metav1.Status)
	if ev.Type != watch.Error || !ok || st.Code != 504 || st.Details == nil || len(st.Details.Causes) == 0 || st.Details.Causes[0].Type != metav1.CauseTypeResourceVersionTooLarge {
		t.Fatalf("got %s %#v, want a 504 ResourceVersionTooLarge error", ev.Type, ev.Object)
	}
	if _, err := f.s.Watch(ctxT(t), f.prefix, WatchOptions{ResourceVersion: "x"}); err == nil {
		t.Fatal("watch accepted a malformed resourceVersion")
	}
}
