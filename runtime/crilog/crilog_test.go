package crilog

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

type nopCloser struct{ *bytes.Buffer }

func (nopCloser) Close() error { return nil }

func TestStreamWriterRecords(t *testing.T) {
	var buf bytes.Buffer
	at := time.Date(2024, 5, 6, 7, 8, 9, 1200, time.UTC)
	lg := &Log{f: nopCloser{&buf}, now: func() time.Time { return at }}
	out := lg.Writer(Stdout)
	errw := lg.Writer(Stderr)

	// Chunks that split lines anywhere, as FIFO reads do.
	out.Write([]byte("hel"))
	errw.Write([]byte("oops\n"))
	out.Write([]byte("lo\nwor"))
	out.Write([]byte("ld\n\nlast"))
	long := strings.Repeat("x", MaxLine+10)
	errw.Write([]byte(long[:100]))
	errw.Write([]byte(long[100:] + "\n"))
	out.Flush()
	errw.Flush()

	ts := "2024-05-06T07:08:09.000001200Z"
	want := strings.Join([]string{
		ts + " stderr F oops",
		ts + " stdout F hello",
		ts + " stdout F world",
		ts + " stdout F ",
		ts + " stderr P " + long[:MaxLine],
		ts + " stderr F " + long[MaxLine:],
		ts + " stdout F last",
	}, "\n") + "\n"
	if got := buf.String(); got != want {
		t.Fatalf("log:\n%s\nwant:\n%s", got, want)
	}
}

func TestStreamWriterCutsEndlessLine(t *testing.T) {
	var buf bytes.Buffer
	lg := &Log{f: nopCloser{&buf}, now: time.Now}
	w := lg.Writer(Stdout)
	chunk := strings.Repeat("y", 4096)
	for i := 0; i < 10; i++ {
		w.Write([]byte(chunk))
	}
	// 40 KiB without a newline: two 16 KiB partial records are out, the
	// rest waits for its newline.
	if n := strings.Count(buf.String(), " stdout P "); n != 2 {
		t.Fatalf("%d partial records, want 2", n)
	}
	if len(w.buf) != 10*4096-2*MaxLine {
		t.Fatalf("buffered %d bytes", len(w.buf))
	}
}

func TestCRILogRotation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app", "0.log")
	lg, err := Open(path, Rotation{MaxSize: 200, MaxFiles: 3})
	if err != nil {
		t.Fatal(err)
	}
	tick := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	lg.now = func() time.Time { tick = tick.Add(time.Millisecond); return tick }
	w := lg.Writer(Stdout)
	for i := range 42 {
		if _, err := fmt.Fprintf(w, "line %02d\n", i); err != nil {
			t.Fatal(err)
		}
	}
	if err := lg.Close(); err != nil {
		t.Fatal(err)
	}
	rotated, err := RotatedLogs(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(rotated) != 2 {
		t.Fatalf("rotated files %v: want MaxFiles-1 = 2 beside the current one", rotated)
	}
	cur, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(cur) >= 200 || !strings.HasSuffix(string(cur), "stdout F line 41\n") {
		t.Errorf("current file holds %d bytes ending %q: want under MaxSize with the last line", len(cur), cur)
	}
	last, err := os.ReadFile(rotated[1])
	if err != nil {
		t.Fatal(err)
	}
	if len(last) < 200 || !strings.Contains(string(last), "stdout F line") {
		t.Errorf("newest rotated file holds %d bytes: want a full one", len(last))
	}
}
