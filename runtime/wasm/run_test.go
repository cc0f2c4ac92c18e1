package wasm

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wasmkube/wasmkube/internal/syncbuf"
)

func TestArgsEnvClocksRandom(t *testing.T) {
	m := compileGuest(t, "echo")
	res, out := run(t, m, WithArgv("/app.wasm", "one", "two words"), WithEnv("GREETING=hello world", "EMPTY=", "EQ=a=b"))
	if res.Termination != Exited || res.ExitCode != 0 || res.Reason() != "Completed" {
		t.Fatalf("result %+v, want exited 0; stderr:\n%s", res, out.stderr.String())
	}
	stdout := out.stdout.String()
	for _, want := range []string{
		"arg[0]=/app.wasm\n", "arg[1]=one\n", "arg[2]=two words\n",
		"env:GREETING=hello world\n", "env:EMPTY=\n", "env:EQ=a=b\n",
		"slept>=20ms=true\n",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout)
		}
	}
	if strings.Contains(stdout, "arg[3]") {
		t.Errorf("more arguments than given:\n%s", stdout)
	}
	// wazero's default clock is fixed in 2022: the real one must be used.
	if want := "year=" + time.Now().Format("2006") + "\n"; !strings.Contains(stdout, want) {
		t.Errorf("stdout lacks %q (wall clock not the host's):\n%s", want, stdout)
	}
	if out.stderr.String() != "to stderr\n" {
		t.Errorf("stderr %q, want %q", out.stderr.String(), "to stderr\n")
	}
	// wazero's default random source is deterministic: two runs must differ.
	_, out2 := run(t, m)
	re := regexp.MustCompile(`random=([0-9a-f]{32})`)
	r1, r2 := re.FindStringSubmatch(stdout), re.FindStringSubmatch(out2.stdout.String())
	if r1 == nil || r2 == nil || r1[1] == r2[1] {
		t.Errorf("random values %v and %v: want two different ones", r1, r2)
	}
}

func TestBadEnvEntry(t *testing.T) {
	m := compileGuest(t, "echo")
	_, err := m.Run(context.Background(), WithEnv("NOVALUE"))
	if err == nil || !strings.Contains(err.Error(), `"NOVALUE"`) {
		t.Fatalf("err %v, want one naming the entry", err)
	}
}

func TestPreopens(t *testing.T) {
	m := compileGuest(t, "files")
	rw, ro := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(ro, "in.txt"), []byte("from the host"), 0o644); err != nil {
		t.Fatal(err)
	}
	outside := filepath.Join(t.TempDir(), "secret.txt")
	if err := os.WriteFile(outside, []byte("secret"), 0o644); err != nil {
		t.Fatal(err)
	}
	res, out := run(t, m, WithPreopen(rw, "/data", false), WithPreopen(ro, "/config", true),
		WithArgv("files",
			"read", "/config/in.txt",
			"write", "/data/out.txt",
			"write", "/config/new.txt",
			"write", "/config/in.txt",
			"read", outside,
			"read", "/data/../../"+outside,
			"read", "/etc/hostname",
		))
	if res.Termination != Exited || res.ExitCode != 0 {
		t.Fatalf("result %+v; stderr:\n%s", res, out.stderr.String())
	}
	stdout := out.stdout.String()
	for _, want := range []string{
		"ok read /config/in.txt from the host\n",
		"ok write /data/out.txt\n",
		"error write /config/new.txt:",
		"error write /config/in.txt:",
		"error read " + outside + ":",
		"error read /data/../../" + outside + ":",
		"error read /etc/hostname:",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout)
		}
	}
	if data, err := os.ReadFile(filepath.Join(rw, "out.txt")); err != nil || string(data) != "written by the guest" {
		t.Errorf("host file of the writable preopen: %q, %v", data, err)
	}
	if _, err := os.Stat(filepath.Join(ro, "new.txt")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a file was created in the read-only preopen: %v", err)
	}
	if data, _ := os.ReadFile(filepath.Join(ro, "in.txt")); string(data) != "from the host" {
		t.Errorf("read-only file changed to %q", data)
	}
}

func TestExitCodes(t *testing.T) {
	m := compileGuest(t, "exit")
	for _, code := range []int{0, 1, 3, 42, 255} {
		res, out := run(t, m, WithArgv("exit", "code", strconv.Itoa(code)))
		if res.Termination != Exited || res.ExitCode != code {
			t.Errorf("exit %d: result %+v; stderr:\n%s", code, res, out.stderr.String())
		}
		if want := map[bool]string{true: "Completed", false: "Error"}[code == 0]; res.Reason() != want {
			t.Errorf("exit %d: reason %q, want %q", code, res.Reason(), want)
		}
	}
	// A Go panic is the guest's own exit 2, not a trap.
	res, out := run(t, m, WithArgv("exit", "panic"))
	if res.Termination != Exited || res.ExitCode != 2 || !strings.Contains(out.stderr.String(), "the guest panics") {
		t.Errorf("panic: result %+v; stderr:\n%s", res, out.stderr.String())
	}
}

// trapModule is a WASI command whose _start executes `unreachable`:
// (module (func (export "_start") unreachable)). Go guests cannot trap on
// purpose (their faults become panics), so this one is written by hand.
var trapModule = []byte{
	0x00, 'a', 's', 'm', 0x01, 0x00, 0x00, 0x00,
	0x01, 0x04, 0x01, 0x60, 0x00, 0x00, // type section: () -> ()
	0x03, 0x02, 0x01, 0x00, // function section: one function of type 0
	0x07, 0x0a, 0x01, 0x06, '_', 's', 't', 'a', 'r', 't', 0x00, 0x00, // export "_start"
	0x0a, 0x05, 0x01, 0x03, 0x00, 0x00, 0x0b, // code: unreachable; end
}

func TestTrap(t *testing.T) {
	rt := New()
	defer rt.Close(context.Background())
	m, err := rt.Compile(context.Background(), "sha256:trap", trapModule)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close(context.Background())
	res, _ := run(t, m)
	if res.Termination != Trapped || res.ExitCode != ExitCodeTrapped || res.Reason() != "Error" {
		t.Fatalf("result %+v, want trapped with exit code %d", res, ExitCodeTrapped)
	}
	if !strings.Contains(res.Message, "unreachable") {
		t.Errorf("message %q does not name the trap", res.Message)
	}
}

func TestOOM(t *testing.T) {
	const limit = 48 << 20
	m := compileGuest(t, "alloc", WithMemoryLimit(limit))
	if m.MemoryLimit() != limit {
		t.Fatalf("memory limit %d, want %d", m.MemoryLimit(), limit)
	}
	res, out := run(t, m, WithArgv("alloc"))
	if res.Termination != OOMKilled || res.ExitCode != ExitCodeOOMKilled || res.Reason() != "OOMKilled" {
		t.Fatalf("result %+v, want OOMKilled; stdout:\n%s\nstderr:\n%s", res, out.stdout.String(), out.stderr.String())
	}
	if !strings.Contains(out.stderr.String(), "out of memory") {
		t.Errorf("the guest did not see the refusal; stderr:\n%s", out.stderr.String())
	}
	// Under the limit, the same module allocating a bounded amount completes:
	// the limit alone does not make a run OOMKilled.
	res, out = run(t, m, WithArgv("alloc", "8"))
	if res.Termination != Exited || res.ExitCode != 0 || !strings.Contains(out.stdout.String(), "allocated 8 MiB") {
		t.Errorf("bounded allocation: result %+v; stdout:\n%s\nstderr:\n%s", res, out.stdout.String(), out.stderr.String())
	}
}

func TestMemoryLimitBelowModuleMinimum(t *testing.T) {
	rt := New()
	defer rt.Close(context.Background())
	_, err := rt.Compile(context.Background(), "sha256:alloc-tiny", buildGuest(t, "alloc"), WithMemoryLimit(64<<10))
	if !errors.Is(err, ErrMemoryLimit) {
		t.Fatalf("err %v, want ErrMemoryLimit", err)
	}
}

func TestCancel(t *testing.T) {
	m := compileGuest(t, "exit")
	for _, mode := range []string{"sleep-loop", "sleep"} {
		t.Run(mode, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			started := make(chan struct{})
			stdout := &notifyWriter{first: started}
			type ended struct {
				res Result
				err error
			}
			done := make(chan ended, 1)
			go func() {
				res, err := m.Run(ctx, WithArgv("exit", mode), WithStdout(stdout))
				done <- ended{res, err}
			}()
			select {
			case <-started:
			case <-time.After(time.Minute):
				t.Fatal("the guest did not start")
			}
			cancel()
			select {
			case e := <-done:
				if e.err != nil {
					t.Fatalf("run: %v", e.err)
				}
				if e.res.Termination != Killed || e.res.ExitCode != ExitCodeKilled || e.res.Reason() != "Error" {
					t.Errorf("result %+v, want killed", e.res)
				}
			case <-time.After(time.Minute):
				t.Fatal("the guest still runs a minute after its context was cancelled")
			}
		})
	}
}

// notifyWriter closes first at the first write.
type notifyWriter struct {
	syncbuf.Buffer
	first chan struct{}
}

func (w *notifyWriter) Write(p []byte) (int, error) {
	n, err := w.Buffer.Write(p)
	select {
	case <-w.first:
	default:
		close(w.first)
	}
	return n, err
}
