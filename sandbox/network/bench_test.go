package network

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/wasmkube/wasmkube/sandbox/ipam"
	"github.com/wasmkube/wasmkube/sandbox/network/networktest"
)

// BenchmarkSetup measures what every pod start pays for its network, wasm
// or OCI: a new pinned network namespace, a veth pair with one end on the
// node bridge, the pod's address and default route. Each round sets up a
// pod's network and tears it down again (the teardown is not timed).
func BenchmarkSetup(b *testing.B) {
	suffix := networktest.RandHex(b, 3)
	bridge := "wkb" + suffix
	netnsDir := filepath.Join(b.TempDir(), "netns")
	alloc, err := ipam.New(b.TempDir(), networktest.FreeSubnet(b))
	if err != nil {
		b.Fatal(err)
	}
	gw := alloc.Gateway()
	if err := EnsureBridge(bridge, gw); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if err := DeleteBridge(bridge); err != nil {
			b.Errorf("delete bridge: %v", err)
		}
	})
	ctx := context.Background()
	var took []time.Duration
	b.ResetTimer()
	for i := range b.N {
		id := fmt.Sprintf("wkb-%s-%d", suffix, i)
		addr, err := alloc.Allocate(id)
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		if _, err := Setup(ctx, Config{PodID: id, NetnsDir: netnsDir, Bridge: bridge, IP: addr, Gateway: gw.IP}); err != nil {
			b.Fatal(err)
		}
		took = append(took, time.Since(start))
		b.StopTimer()
		if err := Teardown(netnsDir, id); err != nil {
			b.Fatal(err)
		}
		if err := alloc.ReleaseOwner(id); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	slices.Sort(took)
	b.ReportMetric(float64(took[len(took)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(took[len(took)*99/100].Microseconds())/1000, "p99-ms")
}
