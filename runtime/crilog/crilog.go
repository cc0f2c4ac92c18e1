package crilog

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

// TimeFormat is the fixed-width form of RFC 3339 with nanoseconds that
// the kubelet and containerd's CRI plugin write, so that lines sort by text.
const TimeFormat = "2006-01-02T15:04:05.000000000Z07:00"

// MaxLine bounds one log record. A longer line is cut into partial (P)
// records, as the CRI plugin does, so a process writing without newlines
// cannot make its writer buffer without limit.
const MaxLine = 16 * 1024

// Stream names in the CRI log format.
const (
	Stdout = "stdout"
	Stderr = "stderr"
)

// Log is one container's log file, shared by its stdout and stderr
// Writers. Records are written whole under the lock so the two streams
// never interleave inside a line.
type Log struct {
	mu  sync.Mutex
	f   io.WriteCloser
	now func() time.Time
	// rotation; a zero maxSize never rotates.
	path     string
	size     int64
	rotation Rotation
}

// Rotation bounds a container's log on disk as the kubelet's
// containerLogMaxSize and containerLogMaxFiles do: once the file reaches
// MaxSize it is renamed to <path>.<timestamp> and a new one opened; at most
// MaxFiles files (the current one included) are kept. Unlike the kubelet,
// rotated files are not compressed: readers only ever read the current
// file, and an edge node's logs are small.
type Rotation struct {
	MaxSize  int64
	MaxFiles int
}

// Kubelet's defaults for containerLogMaxSize and containerLogMaxFiles.
const (
	DefaultMaxSize  = 10 << 20
	DefaultMaxFiles = 5
)

// Open opens (appending) or creates the log at path, and its directory.
// Close it once its Writers are flushed.
func Open(path string, rot Rotation) (*Log, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("create log dir: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		return nil, fmt.Errorf("open log %s: %w", path, err)
	}
	var size int64
	if fi, err := f.Stat(); err == nil {
		size = fi.Size()
	}
	return &Log{f: f, now: time.Now, path: path, size: size, rotation: rot}, nil
}

// rotate renames the full file away and opens a new one, then removes the
// oldest rotated files beyond MaxFiles. Called with mu held.
func (l *Log) rotate() error {
	if err := l.f.Close(); err != nil {
		return fmt.Errorf("close log for rotation: %w", err)
	}
	rotated := l.path + "." + l.now().UTC().Format("20060102-150405.000000000")
	if err := os.Rename(l.path, rotated); err != nil {
		return fmt.Errorf("rotate log %s: %w", l.path, err)
	}
	f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		return fmt.Errorf("reopen log %s: %w", l.path, err)
	}
	l.f, l.size = f, 0
	old, err := RotatedLogs(l.path)
	if err != nil {
		return err
	}
	keep := max(l.rotation.MaxFiles-1, 0)
	for len(old) > keep {
		if err := os.Remove(old[0]); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("remove rotated log: %w", err)
		}
		old = old[1:]
	}
	return nil
}

// RotatedLogs lists the rotated files of the log at path, oldest first.
func RotatedLogs(path string) ([]string, error) {
	matches, err := filepath.Glob(globEscape(path) + ".*")
	if err != nil {
		return nil, fmt.Errorf("list rotated logs of %s: %w", path, err)
	}
	// The timestamp suffix sorts by time as text.
	sort.Strings(matches)
	return matches, nil
}

func globEscape(p string) string {
	var b strings.Builder
	for _, r := range p {
		if strings.ContainsRune(`*?[\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

func (l *Log) record(stream string, full bool, line []byte) error {
	tag := "P"
	if full {
		tag = "F"
	}
	var b bytes.Buffer
	b.Grow(len(TimeFormat) + len(stream) + len(line) + 5)
	b.WriteString(l.now().Format(TimeFormat))
	b.WriteByte(' ')
	b.WriteString(stream)
	b.WriteByte(' ')
	b.WriteString(tag)
	b.WriteByte(' ')
	b.Write(line)
	b.WriteByte('\n')
	l.mu.Lock()
	defer l.mu.Unlock()
	n, err := l.f.Write(b.Bytes())
	l.size += int64(n)
	if err != nil {
		return err
	}
	if l.rotation.MaxSize > 0 && l.path != "" && l.size >= l.rotation.MaxSize {
		return l.rotate()
	}
	return nil
}

// Close closes the file.
func (l *Log) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.f.Close()
}

// Writer returns the writer of one stream (Stdout or Stderr) of the log.
func (l *Log) Writer(stream string) *Writer {
	return &Writer{log: l, stream: stream}
}

// Writer turns the arbitrary chunks a process writes (a FIFO read, a
// guest's fd_write) into CRI records, keeping an unfinished line until its
// newline arrives. A Writer is not safe for concurrent use: each stream has
// one, written from one goroutine.
type Writer struct {
	log    *Log
	stream string
	buf    []byte
}

// Write implements io.Writer.
func (w *Writer) Write(p []byte) (int, error) {
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
	for len(w.buf) >= MaxLine {
		chunk := w.buf[:MaxLine]
		if err := w.log.record(w.stream, false, chunk); err != nil {
			return n, err
		}
		w.buf = append(w.buf[:0], w.buf[MaxLine:]...)
	}
	return n, nil
}

// emit writes the buffered line; a line longer than MaxLine goes out as
// partial records followed by the full one carrying its end.
func (w *Writer) emit(full bool) error {
	for len(w.buf) > MaxLine {
		if err := w.log.record(w.stream, false, w.buf[:MaxLine]); err != nil {
			return err
		}
		w.buf = w.buf[MaxLine:]
	}
	err := w.log.record(w.stream, full, w.buf)
	w.buf = w.buf[:0]
	return err
}

// Flush writes an unterminated last line when the stream ends, as a full
// record: nothing more will follow it.
func (w *Writer) Flush() error {
	if len(w.buf) == 0 {
		return nil
	}
	return w.emit(true)
}
