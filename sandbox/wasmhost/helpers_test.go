package wasmhost_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wasmkube/wasmkube/internal/syncbuf"
	"github.com/wasmkube/wasmkube/sandbox/wasmhost"
)

// artifacts are the sandbox binary and the guests, built once per test
// binary into dir, with a compilation cache every sandbox of the tests
// shares.
type artifacts struct {
	dir, bin, cache string
	app, raw        string // modules
}

var (
	buildOnce sync.Once
	built     artifacts
	buildErr  error
)

func srcDir(rel string) string {
	_, self, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(self), rel)
}

func goBuild(dir, out string, env ...string) error {
	cmd := exec.Command("go", "build", "-trimpath", "-o", out, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	if msg, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %v\n%s", dir, err, msg)
	}
	return nil
}

// build builds the artifacts, and compiles the app guest into the cache
// with the binary's compile command, as the agent does for a new image.
func build(t testing.TB) artifacts {
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "wasmhost")
		if err != nil {
			buildErr = err
			return
		}
		built = artifacts{dir: dir, bin: filepath.Join(dir, "wasmkube-sandbox"), cache: filepath.Join(dir, "cache"),
			app: filepath.Join(dir, "app.wasm"), raw: filepath.Join(dir, "rawhttp.wasm")}
		wasip1 := []string{"CGO_ENABLED=0", "GOOS=wasip1", "GOARCH=wasm"}
		if buildErr = goBuild(srcDir("../../cmd/wasmkube-sandbox"), built.bin, "CGO_ENABLED=0"); buildErr != nil {
			return
		}
		if buildErr = goBuild(srcDir("testdata/app"), built.app, wasip1...); buildErr != nil {
			return
		}
		if buildErr = goBuild(srcDir("testdata/rawhttp"), built.raw, wasip1...); buildErr != nil {
			return
		}
		for module, digest := range map[string]string{built.app: appDigest, built.raw: rawDigest} {
			cmd := exec.Command(built.bin, "compile", "--module", module, "--digest", digest, "--cache-dir", built.cache)
			if msg, err := cmd.CombinedOutput(); err != nil {
				buildErr = fmt.Errorf("compile %s: %v\n%s", module, err, msg)
				return
			}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return built
}

const (
	appDigest = "sha256:app"
	rawDigest = "sha256:rawhttp"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
	os.Exit(code)
}

// sandbox is one running sandbox process.
type sandbox struct {
	cmd     *exec.Cmd
	socket  string
	stderr  *syncbuf.Buffer
	exited  chan struct{} // closed once the process exited, with waitErr
	waitErr error
}

// startSandbox runs the binary's serve command, with extra flags, and
// dials it.
func startSandbox(t testing.TB, a artifacts, extra ...string) (*sandbox, *wasmhost.Client) {
	t.Helper()
	s := &sandbox{socket: filepath.Join(t.TempDir(), "sandbox.sock"), stderr: &syncbuf.Buffer{}, exited: make(chan struct{})}
	s.cmd = exec.Command(a.bin, append([]string{"serve", "--socket", s.socket, "--cache-dir", a.cache}, extra...)...)
	s.cmd.Stderr = s.stderr
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		s.waitErr = s.cmd.Wait()
		close(s.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-s.exited:
		default:
			_ = s.cmd.Process.Kill()
			<-s.exited
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		c, err := wasmhost.Dial(ctx, s.socket)
		if err == nil {
			t.Cleanup(c.Close)
			return s, c
		}
		select {
		case <-s.exited:
			t.Fatalf("sandbox exited: %v\n%s", s.waitErr, s.stderr.String())
		case <-ctx.Done():
			t.Fatalf("sandbox never answered: %v\n%s", err, s.stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// freePort finds a TCP port free on every address.
func freePort(t testing.TB) int32 {
	t.Helper()
	l, err := net.Listen("tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return int32(l.Addr().(*net.TCPAddr).Port)
}

// waitAccepting waits until port answers HTTP on loopback.
func waitAccepting(t testing.TB, port int32) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("port %d never accepted: %v", port, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func get(client *http.Client, port int32) (string, error) {
	resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d/", port))
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s: %s", resp.Status, b)
	}
	return string(b), err
}

// waitExited waits for the container's exit.
func waitExited(t testing.TB, c *wasmhost.Client, id string) wasmhost.State {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, err := c.Wait(ctx, id)
	if err != nil {
		t.Fatalf("wait %s: %v", id, err)
	}
	return st
}

// logLines reads a CRI log and checks every record's form, returning the
// "stream tag text" parts.
func logLines(t testing.TB, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, line := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
		ts, rest, ok := strings.Cut(line, " ")
		if _, err := time.Parse(time.RFC3339Nano, ts); !ok || err != nil {
			t.Errorf("log line %q has no RFC 3339 time: %v", line, err)
			continue
		}
		if !strings.HasPrefix(rest, "stdout F ") && !strings.HasPrefix(rest, "stderr F ") {
			t.Errorf("log line %q is not a full stdout or stderr record", line)
		}
		out = append(out, rest)
	}
	return out
}

func isNotFound(err error) bool { return errors.Is(err, wasmhost.ErrNotFound) }
