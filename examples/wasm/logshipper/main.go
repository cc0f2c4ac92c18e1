//go:build wasip1

// Command logshipper is the log collection sidecar of
// examples/wasm-log-collection.yaml, a WebAssembly (WASI preview 1) module
// built with GOOS=wasip1 GOARCH=wasm. It tails every *.log file of a
// directory its pod shares with the business container (an emptyDir
// preopened at the volumeMount's mountPath) and posts the new lines to a
// collector, so the business container ships its logs without a change.
//
// Environment:
//
//	COLLECTOR_URL  where to POST, e.g. http://log-collector:8080/logs
//	               (required); the body is JSON lines
//	               {"source":..,"file":..,"line":..}
//	LOG_DIR        the directory to watch (default /logs)
//	SOURCE         the name lines are tagged with (default the hostname,
//	               which is the pod's name)
//	POLL_INTERVAL  how often to look for growth (default 1s)
//
// Files are read from their start, so lines written before the sidecar
// started are shipped too; files that appear later are picked up on the
// next poll. An offset only moves once the collector has accepted the
// lines, so a collector that is down delays lines and loses none. A file
// that became shorter than its offset (truncated, or replaced by a new
// one) is read again from its start. Offsets live in memory: a restarted
// sidecar ships the files again from their start.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/wasmkube/wasmkube/sandbox/wasinet"
)

// maxRead bounds what one poll reads of one file, so a large backlog
// goes out in several requests.
const maxRead = 256 << 10

// entry is one log line as the collector receives it.
type entry struct {
	Source string `json:"source"`
	File   string `json:"file"`
	Line   string `json:"line"`
}

// chunk is what one poll read of one file: its lines and the offset
// after them.
type chunk struct {
	file    string
	lines   []string
	nextOff int64
}

type shipper struct {
	dir, collector, source string
	client                 *http.Client
	offsets                map[string]int64
	lastErr                string
}

func main() {
	s := &shipper{
		dir:       envOr("LOG_DIR", "/logs"),
		collector: os.Getenv("COLLECTOR_URL"),
		source:    os.Getenv("SOURCE"),
		client:    wasinet.NewClient(10 * time.Second),
		offsets:   map[string]int64{},
	}
	if s.collector == "" {
		fmt.Fprintln(os.Stderr, "logshipper: COLLECTOR_URL is not set")
		os.Exit(2)
	}
	if s.source == "" {
		s.source, _ = os.Hostname()
	}
	interval, err := time.ParseDuration(envOr("POLL_INTERVAL", "1s"))
	if err != nil || interval <= 0 {
		fmt.Fprintf(os.Stderr, "logshipper: POLL_INTERVAL %q is not a positive duration\n", os.Getenv("POLL_INTERVAL"))
		os.Exit(2)
	}
	fmt.Printf("logshipper: shipping %s/*.log to %s every %s\n", s.dir, s.collector, interval)
	for {
		s.poll()
		time.Sleep(interval)
	}
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// poll reads what every log file gained and ships it; offsets move only
// when the collector took the lines.
func (s *shipper) poll() {
	chunks, err := s.read()
	if err == nil && len(chunks) > 0 {
		err = s.ship(chunks)
	}
	if err != nil {
		// One report per distinct error, not one per poll.
		if msg := err.Error(); msg != s.lastErr {
			fmt.Fprintln(os.Stderr, "logshipper:", msg)
			s.lastErr = msg
		}
		return
	}
	if s.lastErr != "" {
		fmt.Println("logshipper: shipping again")
		s.lastErr = ""
	}
	for _, c := range chunks {
		s.offsets[c.file] = c.nextOff
		fmt.Printf("logshipper: shipped %d lines of %s\n", len(c.lines), c.file)
	}
}

// read returns the complete lines each *.log file gained since its offset.
func (s *shipper) read() ([]chunk, error) {
	des, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", s.dir, err)
	}
	var chunks []chunk
	var errs []error
	seen := map[string]bool{}
	for _, de := range des {
		name := de.Name()
		if !strings.HasSuffix(name, ".log") || !de.Type().IsRegular() {
			continue
		}
		seen[name] = true
		c, err := s.readFile(name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if len(c.lines) > 0 {
			chunks = append(chunks, c)
		}
	}
	// A file that is gone starts over if it comes back.
	for name := range s.offsets {
		if !seen[name] {
			delete(s.offsets, name)
		}
	}
	sort.Slice(chunks, func(i, j int) bool { return chunks[i].file < chunks[j].file })
	return chunks, errors.Join(errs...)
}

func (s *shipper) readFile(name string) (chunk, error) {
	c := chunk{file: name}
	f, err := os.Open(filepath.Join(s.dir, name))
	if err != nil {
		return c, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return c, err
	}
	off := s.offsets[name]
	if st.Size() < off {
		fmt.Printf("logshipper: %s shrank to %d bytes, reading it from the start\n", name, st.Size())
		off = 0
		s.offsets[name] = 0
	}
	c.nextOff = off
	if st.Size() == off {
		return c, nil
	}
	buf := make([]byte, min(st.Size()-off, maxRead))
	n, err := f.ReadAt(buf, off)
	if err != nil && !errors.Is(err, io.EOF) {
		return c, fmt.Errorf("read %s: %w", name, err)
	}
	buf = buf[:n]
	// Only complete lines are shipped; a partial last line waits for its
	// newline, unless it alone fills a whole read.
	end := bytes.LastIndexByte(buf, '\n') + 1
	if end == 0 && len(buf) < maxRead {
		return c, nil
	}
	if end == 0 {
		end = len(buf)
	}
	for _, line := range strings.Split(strings.TrimSuffix(string(buf[:end]), "\n"), "\n") {
		c.lines = append(c.lines, strings.TrimSuffix(line, "\r"))
	}
	c.nextOff = off + int64(end)
	return c, nil
}

// ship posts the chunks' lines to the collector as JSON lines.
func (s *shipper) ship(chunks []chunk) error {
	var body bytes.Buffer
	enc := json.NewEncoder(&body)
	for _, c := range chunks {
		for _, line := range c.lines {
			if err := enc.Encode(entry{Source: s.source, File: c.file, Line: line}); err != nil {
				return err
			}
		}
	}
	resp, err := s.client.Post(s.collector, "application/x-ndjson", &body)
	if err != nil {
		return fmt.Errorf("post to collector: %w", err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("collector answered %s: %s", resp.Status, bytes.TrimSpace(msg))
	}
	return nil
}
