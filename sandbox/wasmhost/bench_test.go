package wasmhost_test

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wasmkube/wasmkube/sandbox/wasmhost"
)

// BenchmarkSandboxIdle measures, from a warm compilation cache, the time
// from Create+Start to the guest's port accepting, and the memory of
// sandbox processes idle with their guest serving: a net/http guest and the
// smallest raw WASI server, one sandbox alone and five of the same image at
// once. PSS with several sandboxes running is the figure for a node's
// density: what the sandboxes share (the page cache's copy of the compiled
// code, the binary's text) is divided between them. With -v it logs the
// largest mappings of an idle sandbox by PSS.
func BenchmarkSandboxIdle(b *testing.B) {
	a := build(b)
	for _, guest := range []struct{ name, module, digest string }{
		{"nethttp", a.app, appDigest},
		{"rawhttp", a.raw, rawDigest},
	} {
		for _, n := range []int{1, 5} {
			b.Run(fmt.Sprintf("%s/sandboxes=%d", guest.name, n), func(b *testing.B) {
				var ready time.Duration
				var rss, pss float64
				for range b.N {
					var pids []int
					var stops []func()
					for range n {
						pid, took, stop := idleSandbox(b, a, guest.module, guest.digest)
						pids, stops, ready = append(pids, pid), append(stops, stop), ready+took
					}
					// Idle: let the runtimes give back what they freed.
					time.Sleep(500 * time.Millisecond)
					for _, pid := range pids {
						r, p := memory(b, pid)
						rss += r
						pss += p
					}
					if testing.Verbose() {
						b.Logf("largest mappings of sandbox %d by PSS:\n%s", pids[0], largestMappings(b, pids[0], 12))
					}
					for _, stop := range stops {
						stop()
					}
				}
				count := float64(b.N * n)
				b.ReportMetric(float64(ready.Milliseconds())/count, "ms-to-accept")
				b.ReportMetric(rss/count, "RSS-MiB")
				b.ReportMetric(pss/count, "PSS-MiB")
			})
		}
	}
}

// idleSandbox starts a sandbox serving module, waits for its port and one
// answer, and returns its pid, the time from Create to accepting, and its
// stop.
func idleSandbox(b testing.TB, a artifacts, module, digest string) (int, time.Duration, func()) {
	sb, c := startSandbox(b, a)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	port := freePort(b)
	spec := wasmhost.ContainerSpec{ID: "web", Module: module, Digest: digest, Argv: []string{"app", "serve"},
		Ports: []wasmhost.Port{{Port: port}}, LogPath: filepath.Join(b.TempDir(), "0.log")}
	start := time.Now()
	if err := c.Create(ctx, spec); err != nil {
		b.Fatal(err)
	}
	if err := c.Start(ctx, "web"); err != nil {
		b.Fatal(err)
	}
	waitAccepting(b, port)
	took := time.Since(start)
	if body, err := get(&http.Client{}, port); err != nil || !strings.HasPrefix(body, "hello") {
		b.Fatalf("guest answered %q, %v", body, err)
	}
	return sb.cmd.Process.Pid, took, func() {
		defer cancel()
		if err := c.Stop(ctx, "web", time.Second); err != nil {
			b.Fatal(err)
		}
		if err := c.Shutdown(ctx); err != nil {
			b.Fatal(err)
		}
		<-sb.exited
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

// largestMappings lists the process's top mappings by PSS from
// /proc/pid/smaps, one line each: PSS, RSS, range, permissions and file.
func largestMappings(b *testing.B, pid, top int) string {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps", pid))
	if err != nil {
		b.Fatal(err)
	}
	type mapping struct {
		head     string
		rss, pss int
	}
	var ms []mapping
	for _, line := range strings.Split(string(data), "\n") {
		fields := strings.Fields(line)
		switch {
		case len(fields) == 0:
		case strings.Contains(fields[0], "-") && !strings.HasSuffix(fields[0], ":"):
			ms = append(ms, mapping{head: line})
		case len(ms) > 0 && (fields[0] == "Rss:" || fields[0] == "Pss:") && len(fields) > 1:
			kb, _ := strconv.Atoi(fields[1])
			if fields[0] == "Rss:" {
				ms[len(ms)-1].rss = kb
			} else {
				ms[len(ms)-1].pss = kb
			}
		}
	}
	slices.SortFunc(ms, func(x, y mapping) int { return y.pss - x.pss })
	var sb strings.Builder
	for _, m := range ms[:min(top, len(ms))] {
		fmt.Fprintf(&sb, "  PSS %7d kB  RSS %7d kB  %s\n", m.pss, m.rss, m.head)
	}
	return sb.String()
}
