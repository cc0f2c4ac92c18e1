package logs

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Options are the kubelet's log options, from PodLogOptions.
type Options struct {
	// TailLines is how many of the last lines to show; negative means all.
	TailLines int64
	// LimitBytes stops the output after that many bytes; <= 0 means no
	// limit.
	LimitBytes int64
	// Since drops lines written before it; zero keeps all.
	Since time.Time
	// Follow keeps reading while the container runs.
	Follow bool
	// Timestamps prefixes each line with its time, RFC 3339 with
	// nanoseconds, as kubectl shows.
	Timestamps bool
}

// Running reports whether the container still writes to its log. Follow
// stops once it says false and the file is drained.
type Running func(ctx context.Context) bool

// stateCheckPeriod bounds how long a follower waits without a file event
// before it asks whether the container still runs (the kubelet's figure).
const stateCheckPeriod = 5 * time.Second

// errLimitReached ends reading once LimitBytes were written.
var errLimitReached = errors.New("log limit reached")

// Read writes the log at path to w as opts ask. running is consulted only
// when following.
func Read(ctx context.Context, path string, opts Options, running Running, w io.Writer) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("open log %s: %w", path, err)
	}
	defer func() { f.Close() }()
	if opts.TailLines >= 0 {
		start, err := tailStart(f, opts.TailLines)
		if err != nil {
			return err
		}
		if _, err := f.Seek(start, io.SeekStart); err != nil {
			return fmt.Errorf("seek log: %w", err)
		}
	}
	out := &output{w: w, opts: opts, left: opts.LimitBytes}
	var watcher *fsnotify.Watcher
	if opts.Follow {
		watcher, err = fsnotify.NewWatcher()
		if err != nil {
			return fmt.Errorf("watch log: %w", err)
		}
		defer watcher.Close()
		// The directory, not the file: its events cover the file's
		// writes and the new file a rotation makes.
		if err := watcher.Add(filepath.Dir(path)); err != nil {
			return fmt.Errorf("watch log %s: %w", path, err)
		}
	}
	r := bufio.NewReader(f)
	var pending []byte // a line read before its newline was written
	// stopping is set once the container was seen stopped: the file is
	// read to its end once more, for what was written just before.
	stopping := false
	// waitMore waits for the log to grow or the container to stop; done
	// says reading ends, with err, because the file was read to its end
	// once more after the container stopped, or waiting failed.
	waitMore := func() (done bool, err error) {
		if stopping {
			return true, nil
		}
		if err := wait(ctx, watcher, path, running); err != nil {
			if errors.Is(err, errStopped) {
				stopping = true
				return false, nil
			}
			return true, err
		}
		return false, nil
	}
	for {
		line, err := r.ReadBytes('\n')
		if err == nil {
			if perr := out.record(append(pending, line...)); perr != nil {
				if errors.Is(perr, errLimitReached) {
					return nil
				}
				return perr
			}
			pending = pending[:0]
			continue
		}
		if !errors.Is(err, io.EOF) {
			return fmt.Errorf("read log: %w", err)
		}
		pending = append(pending, line...)
		if !opts.Follow {
			return nil
		}
		// At the end of the file: a rotated file is drained, so the
		// new one is opened; a container that stopped has written all.
		if rotated(f, path) {
			nf, err := os.Open(path)
			if err != nil {
				if os.IsNotExist(err) {
					if done, err := waitMore(); done {
						return err
					}
					continue
				}
				return fmt.Errorf("reopen rotated log: %w", err)
			}
			f.Close()
			f, r, pending = nf, bufio.NewReader(nf), pending[:0]
			continue
		}
		if done, err := waitMore(); done {
			return err
		}
	}
}

// errStopped is a followed container's end.
var errStopped = errors.New("container stopped")

// wait returns when the log may have grown or been rotated, errStopped when
// the container no longer runs, or ctx's error.
func wait(ctx context.Context, watcher *fsnotify.Watcher, path string, running Running) error {
	if running != nil && !running(ctx) {
		return errStopped
	}
	timer := time.NewTimer(stateCheckPeriod)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case ev, ok := <-watcher.Events:
			if !ok {
				return errors.New("log watcher closed")
			}
			if ev.Name == path && (ev.Has(fsnotify.Write) || ev.Has(fsnotify.Rename) || ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Create)) {
				return nil
			}
		case err := <-watcher.Errors:
			return fmt.Errorf("watch log: %w", err)
		case <-timer.C:
			// No event for a while: the file may have been replaced, or
			// the container stopped; the caller rereads either way.
			return nil
		}
	}
}

// rotated says whether path is no longer the file f is reading.
func rotated(f *os.File, path string) bool {
	cur, err := f.Stat()
	if err != nil {
		return false
	}
	now, err := os.Stat(path)
	if err != nil {
		return os.IsNotExist(err)
	}
	return !os.SameFile(cur, now)
}

// tailStart is the offset of the n-th line from the end.
func tailStart(f *os.File, n int64) (int64, error) {
	fi, err := f.Stat()
	if err != nil {
		return 0, fmt.Errorf("stat log: %w", err)
	}
	size := fi.Size()
	if n == 0 {
		return size, nil
	}
	const block = 4096
	buf := make([]byte, block)
	pos := size
	var lines int64
	// A final newline ends the last line, it does not start a new one.
	first := true
	for pos > 0 {
		size := int64(block)
		if pos < size {
			size = pos
		}
		pos -= size
		if _, err := f.ReadAt(buf[:size], pos); err != nil && !errors.Is(err, io.EOF) {
			return 0, fmt.Errorf("read log: %w", err)
		}
		for i := size - 1; i >= 0; i-- {
			if buf[i] != '\n' {
				first = false
				continue
			}
			if first {
				first = false
				continue
			}
			lines++
			if lines == n {
				return pos + i + 1, nil
			}
		}
	}
	return 0, nil
}

// output turns CRI records into what the client sees.
type output struct {
	w    io.Writer
	opts Options
	left int64
	// partial is set after a P record, whose continuation carries no
	// timestamp of its own in the output.
	partial bool
}

// record writes one CRI line: "<time> <stream> <P|F> <content>\n".
func (o *output) record(line []byte) error {
	ts, rest, ok := bytes.Cut(line, []byte{' '})
	if !ok {
		return nil // not a record: a torn write at a crash
	}
	_, rest, ok = bytes.Cut(rest, []byte{' '})
	if !ok {
		return nil
	}
	tag, content, ok := bytes.Cut(rest, []byte{' '})
	if !ok {
		return nil
	}
	t, err := time.Parse(time.RFC3339Nano, string(ts))
	if err != nil {
		return nil
	}
	if !o.opts.Since.IsZero() && t.Before(o.opts.Since) {
		return nil
	}
	full := string(tag) == "F"
	if !full {
		content = bytes.TrimSuffix(content, []byte{'\n'})
	}
	var b []byte
	if o.opts.Timestamps && !o.partial {
		b = append(b, t.Format(time.RFC3339Nano)...)
		b = append(b, ' ')
	}
	b = append(b, content...)
	o.partial = !full
	return o.write(b)
}

func (o *output) write(b []byte) error {
	if o.opts.LimitBytes > 0 {
		if int64(len(b)) >= o.left {
			_, err := o.w.Write(b[:o.left])
			if err != nil {
				return err
			}
			o.left = 0
			return errLimitReached
		}
		o.left -= int64(len(b))
	}
	_, err := o.w.Write(b)
	return err
}
