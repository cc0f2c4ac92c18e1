package wasmhost_test

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wasmkube/wasmkube/sandbox/wasmhost"
)

// BenchmarkSandboxIdle measures, from a warm compilation cache, the time
// from Create+Start to the guest's port accepting, and the memory of a
// sandbox process idle with the guest serving: a net/http guest and the
// smallest raw WASI server.
func BenchmarkSandboxIdle(b *testing.B) {
	a := build(b)
	for _, guest := range []struct{ name, module, digest string }{
		{"nethttp", a.app, appDigest},
		{"rawhttp", a.raw, rawDigest},
	} {
		b.Run(guest.name, func(b *testing.B) {
			var ready time.Duration
			var rss, pss float64
			for range b.N {
				sb, c := startSandbox(b, a)
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				port := freePort(b)
				spec := wasmhost.ContainerSpec{ID: "web", Module: guest.module, Digest: guest.digest, Argv: []string{"app", "serve"},
					Ports: []wasmhost.Port{{Port: port}}, LogPath: filepath.Join(b.TempDir(), "0.log")}
				start := time.Now()
				if err := c.Create(ctx, spec); err != nil {
					b.Fatal(err)
				}
				if err := c.Start(ctx, "web"); err != nil {
					b.Fatal(err)
				}
				waitAccepting(b, port)
				ready += time.Since(start)
				if body, err := get(&http.Client{}, port); err != nil || !strings.HasPrefix(body, "hello") {
					b.Fatalf("guest answered %q, %v", body, err)
				}
				// Idle: let the runtime give back what it freed.
				time.Sleep(500 * time.Millisecond)
				r, p := memory(b, sb.cmd.Process.Pid)
				rss += r
				pss += p
				if err := c.Stop(ctx, "web", time.Second); err != nil {
					b.Fatal(err)
				}
				if err := c.Shutdown(ctx); err != nil {
					b.Fatal(err)
				}
				<-sb.exited
				cancel()
			}
			b.ReportMetric(float64(ready.Milliseconds())/float64(b.N), "ms-to-accept")
			b.ReportMetric(rss/float64(b.N), "RSS-MiB")
			b.ReportMetric(pss/float64(b.N), "PSS-MiB")
		})
	}
}

// memory reads the process's RSS and PSS in MiB.
func memory(b *testing.B, pid int) (rss, pss float64) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 {
			continue
		}
		kb, _ := strconv.ParseFloat(fields[1], 64)
		switch fields[0] {
		case "Rss:":
			rss = kb / 1024
		case "Pss:":
			pss = kb / 1024
		}
	}
	return rss, pss
}
