package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/wasmkube/wasmkube/internal/testimages"
)

const logSamples = 200

// BenchmarkLogsFollowLatency measures `kubectl logs -f` on a real node:
// the time from a line written to a container's stdout to kubectl printing
// it, through the agent's log writer, its file, the agent's follower, the
// API server's proxy and kubectl. The benchmark writes the lines itself
// into the container's stdout, so both ends are timed on one clock.
func BenchmarkLogsFollowLatency(b *testing.B) {
	n := StartNode(b, NodeOptions{})
	n.ImportImage(b, testimages.BuildBusyboxOCIArchive(b, busyboxImage))
	ctx := context.Background()
	const marker = "987654"
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "follow", Namespace: "default"},
		Spec: corev1.PodSpec{
			TerminationGracePeriodSeconds: new(int64(1)),
			Containers:                    []corev1.Container{{Name: "app", Image: busyboxImage, Command: []string{"sleep", marker}}},
		},
	}
	if _, err := n.Client.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		b.Fatal(err)
	}
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(100 * time.Millisecond) {
		p, err := n.Client.CoreV1().Pods("default").Get(ctx, "follow", metav1.GetOptions{})
		if err == nil && p.Status.Phase == corev1.PodRunning {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("pod not running: %v", err)
		}
	}
	stdout := containerStdout(b, "sleep\x00"+marker+"\x00")
	defer stdout.Close()

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	cmd := n.command(runCtx, []string{"logs", "-f", "follow"})
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { cancel(); _ = cmd.Wait() }()
	type seen struct {
		line string
		at   time.Time
	}
	lines := make(chan seen, 16)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- seen{sc.Text(), time.Now()}
		}
		close(lines)
	}()
	// The first line also waits for kubectl to connect.
	if _, err := fmt.Fprintln(stdout, "warm-up"); err != nil {
		b.Fatal(err)
	}
	waitLine := func(want string) time.Time {
		timeout := time.After(30 * time.Second)
		for {
			select {
			case s, ok := <-lines:
				if !ok {
					b.Fatalf("kubectl logs -f ended: %s", stderr.String())
				}
				if s.line == want {
					return s.at
				}
			case <-timeout:
				b.Fatalf("line %q never arrived: %s", want, stderr.String())
			}
		}
	}
	waitLine("warm-up")

	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var lat []time.Duration
		for j := range logSamples {
			line := fmt.Sprintf("mark %d-%d", i, j)
			start := time.Now()
			if _, err := fmt.Fprintln(stdout, line); err != nil {
				b.Fatal(err)
			}
			lat = append(lat, waitLine(line).Sub(start))
			time.Sleep(10 * time.Millisecond)
		}
		slices.Sort(lat)
		b.ReportMetric(float64(percentile(lat, 0.5).Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(percentile(lat, 0.99).Microseconds())/1000, "p99-ms")
	}
}

// containerStdout opens the stdout of the process whose command line is
// cmdline, as the container's own writes go.
func containerStdout(b *testing.B, cmdline string) *os.File {
	b.Helper()
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		c, err := os.ReadFile(filepath.Join(d, "cmdline"))
		if err != nil || string(c) != cmdline {
			continue
		}
		f, err := os.OpenFile(filepath.Join(d, "fd", "1"), os.O_WRONLY, 0)
		if err != nil {
			b.Fatalf("open the container's stdout: %v", err)
		}
		return f
	}
	b.Fatalf("no process runs %q", strings.ReplaceAll(cmdline, "\x00", " "))
	return nil
}
