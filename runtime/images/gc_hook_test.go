package images

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/containerd/containerd/images"

	"github.com/wasmkube/wasmkube/internal/testimages"
)

func TestGCOnRemoveGetsTheDigestOfEachImageGone(t *testing.T) {
	cl := startContainerd(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	importArchive(t, ctx, cl, testimages.BuildWasmOCIArchive(t, "example.test/echo:wasm", echoPkg))
	importArchive(t, ctx, cl, testimages.BuildHelloOCIArchive(t, "example.test/hello:1"))
	echo, err := Get(ctx, cl, "example.test/echo:wasm")
	if err != nil {
		t.Fatal(err)
	}
	hello, err := Get(ctx, cl, "example.test/hello:1")
	if err != nil {
		t.Fatal(err)
	}
	// A second name of the echo image: removing one of the two frees
	// nothing derived from the image.
	nsCtx := WithNamespace(ctx)
	if _, err := cl.ImageService().Create(nsCtx, images.Image{Name: "example.test/echo:alias", Target: echo.Target()}); err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	var got []string
	// A full disk far larger than the images: everything unused goes.
	full := func(string) (uint64, uint64, error) { return 1 << 50, 0, nil }
	g := &GC{
		Client: cl, Path: "/", Log: slog.New(slog.DiscardHandler), Usage: full,
		Policy: GCPolicy{HighThresholdPercent: 50, LowThresholdPercent: 40},
		OnRemove: func(_ context.Context, d string) {
			mu.Lock()
			got = append(got, d)
			mu.Unlock()
		},
	}
	// Three names, two images, two calls. Collect says it could not free
	// enough, which is true of the pretend disk.
	if err := g.Collect(ctx); err == nil {
		t.Error("collect claims to have freed a petabyte")
	}
	left, err := List(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 0 {
		t.Fatalf("images left after collecting everything: %v", left)
	}
	slices.Sort(got)
	want := []string{echo.Target().Digest.String(), hello.Target().Digest.String()}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("OnRemove got %v, want each image's digest once: %v", got, want)
	}
}

func TestGCOnRemoveWaitsForTheLastName(t *testing.T) {
	cl := startContainerd(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	importArchive(t, ctx, cl, testimages.BuildWasmOCIArchive(t, "example.test/echo:wasm", echoPkg))
	echo, err := Get(ctx, cl, "example.test/echo:wasm")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.ImageService().Create(WithNamespace(ctx), images.Image{Name: "example.test/echo:alias", Target: echo.Target()}); err != nil {
		t.Fatal(err)
	}
	var got []string
	// One byte to free: one name goes per round.
	g := &GC{
		Client: cl, Path: "/", Log: slog.New(slog.DiscardHandler),
		Usage:    func(string) (uint64, uint64, error) { return 100, 49, nil },
		Policy:   GCPolicy{HighThresholdPercent: 51, LowThresholdPercent: 50},
		OnRemove: func(_ context.Context, d string) { got = append(got, d) },
	}
	if err := g.Collect(ctx); err != nil {
		t.Fatal(err)
	}
	if left, _ := List(ctx, cl); len(left) != 1 || len(got) != 0 {
		t.Fatalf("after one name's removal: images %v, OnRemove calls %v; want one image left and no call", left, got)
	}
	if err := g.Collect(ctx); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, []string{echo.Target().Digest.String()}) {
		t.Fatalf("after the last name's removal OnRemove got %v, want %s", got, echo.Target().Digest)
	}
}
