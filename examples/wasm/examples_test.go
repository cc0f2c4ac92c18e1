//go:build linux

package wasm_test

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// TestLogShipperToCollector runs the two guests of
// examples/wasm-log-collection.yaml: lines of files present at start,
// appended later, of a file that appears later, completed after a partial
// write and of a truncated file all reach the collector's stdout once.
func TestLogShipperToCollector(t *testing.T) {
	l := listen(t)
	collectorURL := fmt.Sprintf("http://%s/logs", l.Addr())
	collector := start(t, "collector", guestConfig{listeners: []net.Listener{l}})

	logs := t.TempDir()
	appendFile(t, filepath.Join(logs, "access.log"), "GET / 200\nGET /a 200\n")
	appendFile(t, filepath.Join(logs, "notes.txt"), "not a log\n")
	start(t, "logshipper", guestConfig{
		env:     []string{"COLLECTOR_URL=" + collectorURL, "SOURCE=shop", "POLL_INTERVAL=100ms"},
		hostDir: logs, guestDir: "/logs",
	})
	has := func(lines ...string) func() bool {
		return func() bool {
			out := collector.Stdout.String()
			for _, l := range lines {
				if !strings.Contains(out, l+"\n") {
					return false
				}
			}
			return true
		}
	}
	collector.WaitFor(t, "lines written before the shipper started", has("shop access.log: GET / 200", "shop access.log: GET /a 200"))

	appendFile(t, filepath.Join(logs, "access.log"), "GET /b 404\n")
	appendFile(t, filepath.Join(logs, "error.log"), "disk full\n")
	appendFile(t, filepath.Join(logs, "warning.log"), "half a li")
	collector.WaitFor(t, "appended lines and a new file", has("shop access.log: GET /b 404", "shop error.log: disk full"))

	appendFile(t, filepath.Join(logs, "warning.log"), "ne, then the rest\n")
	collector.WaitFor(t, "a line completed later", has("shop warning.log: half a line, then the rest"))

	if err := os.WriteFile(filepath.Join(logs, "error.log"), []byte("fresh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	collector.WaitFor(t, "a truncated file read again", has("shop error.log: fresh"))

	out := collector.Stdout.String()
	for _, line := range []string{"shop access.log: GET / 200\n", "shop access.log: GET /b 404\n", "shop error.log: disk full\n"} {
		if n := strings.Count(out, line); n != 1 {
			t.Errorf("collector printed %q %d times:\n%s", line, n, out)
		}
	}
	if strings.Contains(out, "not a log") || strings.Contains(out, "half a li\n") {
		t.Errorf("collector printed a non-.log file or a partial line:\n%s", out)
	}
}

// TestCodeSync runs the sidecar of examples/wasm-code-sync.yaml against a
// host origin: the page lands in the shared directory, a new release
// replaces it, and no temporary file is left behind.
func TestCodeSync(t *testing.T) {
	var mu sync.Mutex
	page := "<h1>release v1</h1>\n"
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprint(w, page)
	}))
	t.Cleanup(origin.Close)

	www := t.TempDir()
	g := start(t, "codesync", guestConfig{
		env:     []string{"SOURCE_URL=" + origin.URL + "/index.html", "INTERVAL=100ms"},
		hostDir: www, guestDir: "/www",
	})
	served := func(want string) func() bool {
		return func() bool {
			b, err := os.ReadFile(filepath.Join(www, "index.html"))
			return err == nil && string(b) == want
		}
	}
	g.WaitFor(t, "the first release in /www/index.html", served("<h1>release v1</h1>\n"))
	mu.Lock()
	page = "<h1>release v2</h1>\n"
	mu.Unlock()
	g.WaitFor(t, "the second release in /www/index.html", served("<h1>release v2</h1>\n"))

	entries, err := os.ReadDir(www)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("/www holds %d entries, want index.html alone: %v", len(entries), entries)
	}
	if n := strings.Count(g.Stdout.String(), "codesync: updated index.html"); n != 2 {
		t.Errorf("codesync reported %d updates, want 2 (one per release):\n%s", n, g.Stdout.String())
	}
}

// TestLocalhost runs the guest of examples/wasm-localhost.yaml: a request
// to its listener makes it fetch a host server through "localhost",
// resolved and dialled through the socket extension, and relay its page.
func TestLocalhost(t *testing.T) {
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "page of the OCI web server\n")
	}))
	t.Cleanup(web.Close)
	_, port, _ := strings.Cut(strings.TrimPrefix(web.URL, "http://"), ":")
	upstream := "http://localhost:" + port + "/"

	l := listen(t)
	addr := l.Addr().String()
	g := start(t, "localhost", guestConfig{env: []string{"UPSTREAM_URL=" + upstream}, listeners: []net.Listener{l}})
	want := fmt.Sprintf("fetched %s:\npage of the OCI web server\n", upstream)
	var body string
	g.WaitFor(t, "a relayed page", func() bool {
		var err error
		body, err = get("http://" + addr + "/")
		return err == nil
	})
	if !strings.Contains(body, want) {
		t.Errorf("GET / answered %q, want it to contain %q", body, want)
	}

	// An upstream that refuses connections is a 502 that says why.
	web.Close()
	if body, err := get("http://" + addr + "/"); err == nil || !strings.Contains(err.Error(), "502") {
		t.Errorf("GET / with the upstream gone: %q, %v; want a 502", body, err)
	}
}
