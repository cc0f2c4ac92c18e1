package oci

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// criTimestamp is the fixed-width form of RFC 3339 with nanoseconds that
// the kubelet and containerd's CRI plugin write, so that lines sort by text.
const criTimestamp = "2006-01-02T15:04:05.000000000Z07:00"

// maxLogLine bounds one log record. A longer line is cut into partial (P)
// records, as the CRI plugin does, so a process writing without newlines
// cannot make the agent buffer without limit.
const maxLogLine = 16 * 1024

// Stream names in the CRI log format.
const (
	streamStdout = "stdout"
	streamStderr = "stderr"
)

// criLog is one container's log file, shared by its stdout and stderr
// writers. Records are written whole under the lock so the two streams
// never interleave inside a line.
type criLog struct {
	mu  sync.Mutex
	f   io.WriteCloser
	now func() time.Time
}

func openCRILog(path string) (*criLog, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("create log dir: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		return nil, fmt.Errorf("open log %s: %w", path, err)
	}
	return &criLog{f: f, now: time.Now}, nil
}

func (l *criLog) record(stream string, full bool, line []byte) error {
	tag := "P"
	if full {
		tag = "F"
	}
	var b bytes.Buffer
	b.Grow(len(criTimestamp) + len(stream) + len(line) + 5)
	b.WriteString(l.now().Format(criTimestamp))
	b.WriteByte(' ')
	b.WriteString(stream)
	b.WriteByte(' ')
	b.WriteString(tag)
	b.WriteByte(' ')
	b.Write(line)
	b.WriteByte('\n')
	l.mu.Lock()
	defer l.mu.Unlock()
	_, err := l.f.Write(b.Bytes())
	return err
}

func (l *criLog) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.f.Close()
}

// streamWriter turns the arbitrary chunks that cio copies out of a FIFO
// into CRI records, keeping an unfinished line until its newline arrives.
// Each stream has one writer and cio calls it from one goroutine.
type streamWriter struct {
	log    *criLog
	stream string
	buf    []byte
}

func (w *streamWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			w.buf = append(w.buf, p...)
			break
		}
		w.buf = append(w.buf, p[:i]...)
		p = p[i+1:]
		if err := w.emit(true); err != nil {
			return n - len(p), err
		}
	}
	for len(w.buf) >= maxLogLine {
		chunk := w.buf[:maxLogLine]
		if err := w.log.record(w.stream, false, chunk); err != nil {
			return n, err
		}
		w.buf = append(w.buf[:0], w.buf[maxLogLine:]...)
	}
	return n, nil
}

// emit writes the buffered line; a line longer than maxLogLine goes out as
// partial records followed by the full one carrying its end.
func (w *streamWriter) emit(full bool) error {
	for len(w.buf) > maxLogLine {
		if err := w.log.record(w.stream, false, w.buf[:maxLogLine]); err != nil {
			return err
		}
		w.buf = w.buf[maxLogLine:]
	}
	err := w.log.record(w.stream, full, w.buf)
	w.buf = w.buf[:0]
	return err
}

// flush writes an unterminated last line when the stream ends, as a full
// record: nothing more will follow it.
func (w *streamWriter) flush() error {
	if len(w.buf) == 0 {
		return nil
	}
	return w.emit(true)
}
