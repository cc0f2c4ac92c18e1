//go:build wasip1

// Command codesync is the code sync sidecar of examples/wasm-code-sync.yaml,
// a WebAssembly (WASI preview 1) module built with GOOS=wasip1
// GOARCH=wasm. Every few seconds it fetches the published content from a
// source over HTTP and, when it changed, replaces a file of the directory
// its pod shares with a web server (an emptyDir preopened at the
// volumeMount's mountPath). The new content is written to a temporary file
// of the same directory and renamed over the old one, so the server never
// serves a half-written page.
//
// Environment:
//
//	SOURCE_URL   what to fetch, e.g. http://release-origin/index.html
//	             (required)
//	TARGET_DIR   the shared directory (default /www)
//	TARGET_FILE  the file name in it (default index.html)
//	INTERVAL     how often to fetch (default 3s)
package main

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/wasmkube/wasmkube/sandbox/wasinet"
)

// maxContent bounds what one fetch may bring.
const maxContent = 16 << 20

type syncer struct {
	source, dir, file string
	client            *http.Client
	last              []byte
	lastErr           string
}

func main() {
	s := &syncer{
		source: os.Getenv("SOURCE_URL"),
		dir:    envOr("TARGET_DIR", "/www"),
		file:   envOr("TARGET_FILE", "index.html"),
		client: wasinet.NewClient(10 * time.Second),
	}
	if s.source == "" {
		fmt.Fprintln(os.Stderr, "codesync: SOURCE_URL is not set")
		os.Exit(2)
	}
	interval, err := time.ParseDuration(envOr("INTERVAL", "3s"))
	if err != nil || interval <= 0 {
		fmt.Fprintf(os.Stderr, "codesync: INTERVAL %q is not a positive duration\n", os.Getenv("INTERVAL"))
		os.Exit(2)
	}
	// What is already there counts as synced, so a restarted sidecar
	// does not rewrite an unchanged file.
	s.last, _ = os.ReadFile(filepath.Join(s.dir, s.file))
	fmt.Printf("codesync: syncing %s into %s every %s\n", s.source, filepath.Join(s.dir, s.file), interval)
	for {
		if err := s.sync(); err != nil {
			// One report per distinct error, not one per attempt.
			if msg := err.Error(); msg != s.lastErr {
				fmt.Fprintln(os.Stderr, "codesync:", msg)
				s.lastErr = msg
			}
		} else {
			s.lastErr = ""
		}
		time.Sleep(interval)
	}
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// sync fetches the source and installs it when it differs from the file.
func (s *syncer) sync() error {
	resp, err := s.client.Get(s.source)
	if err != nil {
		return fmt.Errorf("fetch: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("fetch %s: %s", s.source, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxContent+1))
	if err != nil {
		return fmt.Errorf("fetch %s: %w", s.source, err)
	}
	if len(body) > maxContent {
		return fmt.Errorf("fetch %s: more than %d bytes", s.source, maxContent)
	}
	if s.last != nil && bytes.Equal(body, s.last) {
		return nil
	}
	if err := s.install(body); err != nil {
		return err
	}
	s.last = body
	fmt.Printf("codesync: updated %s (%d bytes, sha256 %x)\n", s.file, len(body), sha256.Sum256(body))
	return nil
}

// install writes body to a temporary file next to the target and renames
// it over the target: readers see the old file or the new one, never a
// part of it.
func (s *syncer) install(body []byte) error {
	target := filepath.Join(s.dir, s.file)
	tmp := filepath.Join(s.dir, "."+s.file+".codesync-tmp")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("install: %w", err)
	}
	_, err = f.Write(body)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, target)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("install %s: %w", target, err)
	}
	return nil
}
