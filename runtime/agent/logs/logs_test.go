package logs

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wasmkube/wasmkube/internal/syncbuf"
)

const sample = "2024-05-06T07:08:01.000000001Z stdout F one\n" +
	"2024-05-06T07:08:02.000000002Z stderr F two\n" +
	"2024-05-06T07:08:03.000000003Z stdout P thr\n" +
	"2024-05-06T07:08:03.500000000Z stdout F ee\n" +
	"2024-05-06T07:08:04.000000004Z stdout F four\n"

func writeLog(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "0.log")
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestReadOptions(t *testing.T) {
	p := writeLog(t, sample)
	for _, tc := range []struct {
		name string
		opts Options
		want string
	}{
		{"all", Options{TailLines: -1}, "one\ntwo\nthree\nfour\n"},
		{"tail 2", Options{TailLines: 2}, "ee\nfour\n"},
		{"tail 0", Options{TailLines: 0}, ""},
		{"tail more than there is", Options{TailLines: 50}, "one\ntwo\nthree\nfour\n"},
		{"since", Options{TailLines: -1, Since: time.Date(2024, 5, 6, 7, 8, 2, 500, time.UTC)}, "three\nfour\n"},
		{"limit", Options{TailLines: -1, LimitBytes: 6}, "one\ntw"},
		{"timestamps", Options{TailLines: 2, Timestamps: true},
			"2024-05-06T07:08:03.5Z ee\n2024-05-06T07:08:04.000000004Z four\n"},
		{"timestamps once per joined line", Options{TailLines: -1, Timestamps: true, Since: time.Date(2024, 5, 6, 7, 8, 3, 0, time.UTC)},
			"2024-05-06T07:08:03.000000003Z three\n2024-05-06T07:08:04.000000004Z four\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			if err := Read(context.Background(), p, tc.opts, nil, &out); err != nil {
				t.Fatal(err)
			}
			if out.String() != tc.want {
				t.Errorf("got %q, want %q", out.String(), tc.want)
			}
		})
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func appendLine(t *testing.T, p, line string) {
	t.Helper()
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(time.Now().UTC().Format(time.RFC3339Nano) + " stdout F " + line + "\n"); err != nil {
		t.Fatal(err)
	}
}

func TestFollowAcrossRotationUntilStopped(t *testing.T) {
	p := writeLog(t, sample)
	var running atomic.Bool
	running.Store(true)
	var out syncbuf.Buffer
	done := make(chan error, 1)
	go func() {
		done <- Read(context.Background(), p, Options{TailLines: 1, Follow: true},
			func(context.Context) bool { return running.Load() }, &out)
	}()
	waitFor(t, "the tail", func() bool { return out.String() == "four\n" })
	appendLine(t, p, "five")
	waitFor(t, "a line written while following", func() bool { return out.String() == "four\nfive\n" })

	// Rotate as the runtime does: rename, then a new file at the path.
	appendLine(t, p, "six")
	if err := os.Rename(p, p+".20240506-070809"); err != nil {
		t.Fatal(err)
	}
	appendLine(t, p, "seven")
	waitFor(t, "lines across the rotation", func() bool { return out.String() == "four\nfive\nsix\nseven\n" })

	appendLine(t, p, "last")
	running.Store(false)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("follow did not end after the container stopped")
	}
	if got := out.String(); !strings.HasSuffix(got, "seven\nlast\n") {
		t.Errorf("follow output %q does not end with the last line", got)
	}
}

func TestFollowEndsWithContext(t *testing.T) {
	p := writeLog(t, sample)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Read(ctx, p, Options{TailLines: 0, Follow: true}, func(context.Context) bool { return true }, &syncbuf.Buffer{})
	}()
	cancel()
	select {
	case err := <-done:
		if err == nil {
			t.Error("a cancelled follow returned no error")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("follow did not end with its context")
	}
}
