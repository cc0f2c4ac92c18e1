package oci

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/containerd/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/wasmkube/wasmkube/sandbox/network"
)

// criLine matches one record of the CRI log format.
var criLine = regexp.MustCompile(`^(\S+) (stdout|stderr) (F|P) (.*)$`)

type logRecord struct {
	stream, tag, text string
}

func readLog(t *testing.T, path string) []logRecord {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read log: %v", err)
	}
	var recs []logRecord
	for _, line := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
		if line == "" {
			continue
		}
		m := criLine.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("log line is not in CRI format: %q", line)
		}
		if _, err := time.Parse(time.RFC3339Nano, m[1]); err != nil {
			t.Fatalf("log timestamp %q: %v", m[1], err)
		}
		recs = append(recs, logRecord{m[2], m[3], m[4]})
	}
	return recs
}

// getFrom dials addr inside the namespace at path and sends one HTTP
// request over that connection: the socket belongs to the namespace it was
// made in, whichever thread reads it afterwards.
func getFrom(path, addr string) (string, error) {
	var conn net.Conn
	err := network.Do(path, func() error {
		c, err := net.DialTimeout("tcp4", addr, 2*time.Second)
		conn = c
		return err
	})
	if err != nil {
		return "", err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(conn, "GET / HTTP/1.0\r\nHost: %s\r\n\r\n", addr)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return string(body), err
}

func TestHelloInPodNetns(t *testing.T) {
	env := newEnv(t)
	tn := newTestNet(t, env.dir)
	pod := tn.sandbox(t, "pod")
	client := tn.sandbox(t, "client")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	id := "wko-" + tn.suffix + "-hello"
	logPath := env.dir + "/pods/hello/0.log"
	env.removeOnCleanup(t, id)
	err := env.rt.Create(ctx, Spec{
		ID:          id,
		Image:       "wko-hello:test", // short name, as a pod spec gives it
		Env:         []string{"HELLO_ADDR=:8080"},
		NetnsPath:   pod.Path,
		Hostname:    "hello-pod",
		LogPath:     logPath,
		MemoryLimit: 64 << 20,
		CPUQuota:    50000,
		CPUPeriod:   100000,
		PidsLimit:   64,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := env.rt.Create(ctx, Spec{ID: id, Image: helloRef, LogPath: logPath}); !errdefs.IsAlreadyExists(err) {
		t.Fatalf("second Create: err = %v, want already exists", err)
	}
	st, err := env.rt.Status(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if st.Status != StatusCreated || len(st.Warnings) != 0 {
		t.Fatalf("state after create: %+v", st)
	}
	ids, err := env.rt.List(ctx)
	if err != nil || !slices.Contains(ids, id) {
		t.Fatalf("List = %v, %v; want %s in it", ids, err, id)
	}

	if err := env.rt.Start(ctx, id); err != nil {
		t.Fatal(err)
	}
	addr := net.JoinHostPort(pod.IP.IP.String(), "8080")
	var body string
	deadline := time.Now().Add(20 * time.Second)
	for {
		body, err = getFrom(client.Path, addr)
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("GET http://%s/ from the client pod: %v", addr, err)
	}
	if body != "hello from hello-pod\n" {
		t.Fatalf("body from the pod = %q", body)
	}
	// The host reaches the pod over the test bridge too.
	hc := &http.Client{Timeout: 5 * time.Second}
	resp, err := hc.Get("http://" + addr + "/")
	if err != nil {
		t.Fatalf("GET from the host: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("host GET status %d", resp.StatusCode)
	}

	st, err = env.rt.Status(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if st.Status != StatusRunning || st.Pid == 0 || st.StartedAt.IsZero() || st.LogPath != logPath {
		t.Fatalf("state while running: %+v", st)
	}
	if err := env.rt.Start(ctx, id); !errdefs.IsAlreadyExists(err) {
		t.Fatalf("Start of a running container: err = %v, want already exists", err)
	}

	waitc, err := env.rt.Wait(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	grace := 10 * time.Second
	begin := time.Now()
	if err := env.rt.Stop(ctx, id, grace); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(begin); took >= grace {
		t.Fatalf("Stop took %v: SIGTERM did not end the server", took)
	}
	es := <-waitc
	// The server installs no SIGTERM handler, so Go's runtime handles the
	// signal by re-raising it with the default action; as PID 1 of its pid
	// namespace the process is immune to that, and the runtime falls back
	// to exit(2). A Go server in a container therefore ends with 2, not
	// 128+15.
	if es.Err != nil || es.Code != 2 || es.ExitedAt.IsZero() {
		t.Fatalf("exit status after Stop: %+v, want code 2", es)
	}
	st, err = env.rt.Status(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if st.Status != StatusExited || st.ExitCode != 2 || st.FinishedAt.Before(st.StartedAt) || st.OOMKilled {
		t.Fatalf("state after Stop: %+v", st)
	}
	if err := env.rt.Stop(ctx, id, grace); err != nil {
		t.Fatalf("Stop of an exited container: %v", err)
	}

	recs := readLog(t, logPath)
	if !slices.ContainsFunc(recs, func(r logRecord) bool {
		return r.stream == "stderr" && r.tag == "F" && strings.HasSuffix(r.text, "hello: listening on :8080")
	}) {
		t.Fatalf("log has no listening line on stderr: %+v", recs)
	}

	for i := 0; i < 2; i++ {
		if err := env.rt.Remove(ctx, id); err != nil {
			t.Fatalf("Remove #%d: %v", i+1, err)
		}
	}
	ids, err = env.rt.List(ctx)
	if err != nil || slices.Contains(ids, id) {
		t.Fatalf("List after Remove = %v, %v", ids, err)
	}
	if _, err := env.rt.Status(ctx, id); !errdefs.IsNotFound(err) {
		t.Fatalf("Status after Remove: err = %v, want not found", err)
	}
	snaps := env.client.SnapshotService("overlayfs")
	if _, err := snaps.Stat(env.rt.ns(ctx), id); !errdefs.IsNotFound(err) {
		t.Fatalf("snapshot %s after Remove: err = %v, want not found", id, err)
	}
}

// runToExit creates and starts a tool container and waits for its exit.
func runToExit(t *testing.T, env *testEnv, s Spec) (ExitStatus, []logRecord) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	env.removeOnCleanup(t, s.ID)
	if err := env.rt.Create(ctx, s); err != nil {
		t.Fatal(err)
	}
	if err := env.rt.Start(ctx, s.ID); err != nil {
		t.Fatal(err)
	}
	waitc, err := env.rt.Wait(ctx, s.ID)
	if err != nil {
		t.Fatal(err)
	}
	es := <-waitc
	if es.Err != nil {
		t.Fatalf("wait %s: %v", s.ID, es.Err)
	}
	st, err := env.rt.Status(ctx, s.ID)
	if err != nil {
		t.Fatal(err)
	}
	return es, readLog(t, st.LogPath)
}

func TestExitCodeLogsAndArgs(t *testing.T) {
	env := newEnv(t)

	es, recs := runToExit(t, env, Spec{ID: "wko-exit", Image: toolRef, Args: []string{"exit", "3"},
		Labels: map[string]string{"pod-uid": "u1", "container": "c"}})
	if es.Code != 3 {
		t.Fatalf("exit code %d, want 3", es.Code)
	}
	listed, err := env.rt.Containers(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, c := range listed {
		if c.ID == "wko-exit" {
			found = true
			if len(c.Labels) != 2 || c.Labels["pod-uid"] != "u1" || c.Labels["container"] != "c" {
				t.Errorf("listed labels %v, want exactly pod-uid=u1 and container=c", c.Labels)
			}
		}
	}
	if !found {
		t.Errorf("Containers() lacks wko-exit: %+v", listed)
	}
	if err := env.rt.Create(context.Background(), Spec{ID: "wko-bad-label", Image: toolRef,
		Labels: map[string]string{"io.wasmkube.log-path": "/x"}}); err == nil {
		t.Error("Create accepted a label with the reserved prefix")
	}
	want := []logRecord{{"stdout", "F", "to stdout"}, {"stderr", "F", "to stderr"}, {"stdout", "F", "no newline"}}
	for _, w := range want {
		if !slices.Contains(recs, w) {
			t.Errorf("log lacks %+v: %+v", w, recs)
		}
	}
	if len(recs) != len(want) {
		t.Errorf("log has %d records, want %d: %+v", len(recs), len(want), recs)
	}

	// Start again in place: the exited task is replaced, the log appended.
	ctx := context.Background()
	if err := env.rt.Start(ctx, "wko-exit"); err != nil {
		t.Fatalf("restart: %v", err)
	}
	waitc, err := env.rt.Wait(ctx, "wko-exit")
	if err != nil {
		t.Fatal(err)
	}
	if es := <-waitc; es.Code != 3 {
		t.Fatalf("restarted exit %+v", es)
	}
	st, _ := env.rt.Status(ctx, "wko-exit")
	if n := len(readLog(t, st.LogPath)); n != 2*len(want) {
		t.Fatalf("log after restart has %d records, want %d", n, 2*len(want))
	}

	for _, c := range []struct {
		name          string
		command, args []string
		env           []string
		want          string
	}{
		{"image", nil, nil, nil, "args from-cmd"},
		{"command", []string{"/tool", "args", "a"}, nil, nil, "args a"},
		{"args", nil, []string{"args", "b"}, nil, "args b"},
		{"both", []string{"/tool"}, []string{"args", "c"}, nil, "args c"},
		{"env", nil, []string{"env", "FROM_IMAGE"}, []string{"FROM_IMAGE=pod"}, "FROM_IMAGE=pod"},
	} {
		t.Run(c.name, func(t *testing.T) {
			es, recs := runToExit(t, env, Spec{ID: "wko-args-" + c.name, Image: toolRef, Command: c.command, Args: c.args, Env: c.env})
			if es.Code != 0 || len(recs) != 1 || recs[0].text != c.want {
				t.Fatalf("exit %d, log %+v; want %q", es.Code, recs, c.want)
			}
		})
	}
}

func TestStartErrorIsReported(t *testing.T) {
	env := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	id := "wko-missing"
	env.removeOnCleanup(t, id)
	if err := env.rt.Create(ctx, Spec{ID: id, Image: toolRef, Command: []string{"/does-not-exist"}}); err != nil {
		t.Fatal(err)
	}
	err := env.rt.Start(ctx, id)
	if err == nil || !strings.Contains(err.Error(), "/does-not-exist") {
		t.Fatalf("Start error = %v, want one naming /does-not-exist", err)
	}
	t.Logf("start error: %v", err)
	st, err := env.rt.Status(ctx, id)
	if err != nil || st.Status != StatusCreated {
		t.Fatalf("state after a failed start: %+v, %v", st, err)
	}
	if err := env.rt.Remove(ctx, id); err != nil {
		t.Fatal(err)
	}
}

func TestStopKillsAfterGrace(t *testing.T) {
	env := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	id := "wko-stubborn"
	env.removeOnCleanup(t, id)
	if err := env.rt.Create(ctx, Spec{ID: id, Image: toolRef, Args: []string{"ignore-term"}}); err != nil {
		t.Fatal(err)
	}
	if err := env.rt.Start(ctx, id); err != nil {
		t.Fatal(err)
	}
	st, _ := env.rt.Status(ctx, id)
	// The handler must be installed before SIGTERM arrives.
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if data, _ := os.ReadFile(st.LogPath); strings.Contains(string(data), "ignoring SIGTERM") {
			break
		}
	}
	grace := time.Second
	begin := time.Now()
	if err := env.rt.Stop(ctx, id, grace); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(begin); took < grace {
		t.Fatalf("Stop returned after %v, before the grace period", took)
	}
	st, err := env.rt.Status(ctx, id)
	if err != nil || st.Status != StatusExited || st.ExitCode != 137 {
		t.Fatalf("state after SIGKILL: %+v, %v; want exited 137", st, err)
	}
}

func TestOOMKilled(t *testing.T) {
	env := newEnv(t)
	es, _ := runToExit(t, env, Spec{ID: "wko-oom", Image: toolRef, Args: []string{"oom"}, MemoryLimit: 32 << 20})
	if es.Code != 137 {
		t.Fatalf("exit code %d, want 137", es.Code)
	}
	st, err := env.rt.Status(context.Background(), "wko-oom")
	if err != nil {
		t.Fatal(err)
	}
	if !st.OOMKilled {
		t.Fatalf("state %+v: OOMKilled not set", st)
	}
}

func TestVolumesUserAndCapabilities(t *testing.T) {
	env := newEnv(t)
	vol := t.TempDir()
	os.Chmod(vol, 0o777)
	_, recs := runToExit(t, env, Spec{
		ID:    "wko-check",
		Image: toolRef,
		Args:  []string{"check", "/rw/f", "/ro/f", "/rootfile"},
		Mounts: []specs.Mount{
			{Destination: "/rw", Source: vol},
			{Destination: "/ro", Source: vol, Options: []string{"ro"}},
		},
		User:            &specs.User{UID: 1234, GID: 5678},
		ReadOnlyRootfs:  true,
		Hostname:        "checker",
		CapDrop:         []string{"ALL"},
		CapAdd:          []string{"net_bind_service"},
		NoNewPrivileges: true,
	})
	var lines []string
	for _, r := range recs {
		lines = append(lines, r.text)
	}
	got := strings.Join(lines, "\n")
	for _, want := range []string{
		"write /rw/f: <nil>",
		"write /ro/f: open /ro/f: read-only file system",
		"write /rootfile: open /rootfile: read-only file system",
		"uid 1234 gid 5678",
		"CapBnd: 0000000000000400", // CAP_NET_BIND_SERVICE alone
		"NoNewPrivs: 1",
		"hostname checker",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	if _, err := os.Stat(vol + "/f"); err != nil {
		t.Errorf("write through the volume did not reach the host: %v", err)
	}
}

// TestAttachAfterRestart hands a running container from one Runtime to a
// new one, as an agent restart does, and checks the log goes on without
// losing what was written while nobody read.
func TestAttachAfterRestart(t *testing.T) {
	env := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	id := "wko-ticker"
	env.removeOnCleanup(t, id)
	if err := env.rt.Create(ctx, Spec{ID: id, Image: toolRef, Args: []string{"tick"}}); err != nil {
		t.Fatal(err)
	}
	if err := env.rt.Start(ctx, id); err != nil {
		t.Fatal(err)
	}
	st, _ := env.rt.Status(ctx, id)
	waitTicks := func(n int) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			data, _ := os.ReadFile(st.LogPath)
			if strings.Count(string(data), " stdout F tick ") >= n {
				return
			}
		}
		t.Fatalf("fewer than %d ticks in the log", n)
	}
	waitTicks(5)
	env.rt.Close()
	time.Sleep(300 * time.Millisecond)

	rt2 := New(env.client, WithLogDir(env.rt.logDir), WithFIFODir(env.rt.fifoDir), WithCgroupParent(env.rt.cgroup))
	t.Cleanup(func() { rt2.Close() })
	ids, err := rt2.List(ctx)
	if err != nil || !slices.Contains(ids, id) {
		t.Fatalf("new Runtime lists %v, %v", ids, err)
	}
	if err := rt2.Attach(ctx, id); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(st.LogPath)
	waitTicks(strings.Count(string(data), "\n") + 10)
	if err := rt2.Stop(ctx, id, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := rt2.Remove(ctx, id); err != nil {
		t.Fatal(err)
	}
	// Every tick from 0 on, in order: nothing lost across the handover.
	recs := readLog(t, st.LogPath)
	for i, r := range recs {
		if r.text != fmt.Sprintf("tick %d", i) {
			t.Fatalf("record %d is %+v", i, r)
		}
	}
	if left, _ := os.ReadDir(env.rt.fifoDir); len(left) != 0 {
		t.Fatalf("FIFO dirs left after Remove: %d", len(left))
	}
}

// TestShimGroup runs two containers of one group behind a single shim
// (without the group, each container has a shim of its own).
func TestShimGroup(t *testing.T) {
	env := newEnv(t)
	ctx := context.Background()
	group := "wko-group-" + strconv.Itoa(os.Getpid())
	for _, id := range []string{"wko-grouped-a", "wko-grouped-b"} {
		env.removeOnCleanup(t, id)
		if err := env.rt.Create(ctx, Spec{ID: id, Image: toolRef, Args: []string{"tick"}, ShimGroup: group}); err != nil {
			t.Fatal(err)
		}
		if err := env.rt.Start(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	// The shim is named after the container that started it; the group
	// only decides which shim a container's task goes to.
	var shims []string
	cmdlines, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, f := range cmdlines {
		data, err := os.ReadFile(f)
		if err == nil && strings.Contains(string(data), "containerd-shim") && strings.Contains(string(data), env.dir) {
			shims = append(shims, strings.ReplaceAll(string(data), "\x00", " "))
		}
	}
	if len(shims) != 1 {
		t.Fatalf("%d shims serve the two grouped containers, want 1: %q", len(shims), shims)
	}
	for _, id := range []string{"wko-grouped-a", "wko-grouped-b"} {
		if st, err := env.rt.Status(ctx, id); err != nil || st.Status != StatusRunning {
			t.Errorf("%s: %+v, %v; want running", id, st, err)
		}
	}
}

func TestExec(t *testing.T) {
	env := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	id := "wko-exec"
	env.removeOnCleanup(t, id)
	if err := env.rt.Create(ctx, Spec{ID: id, Image: toolRef, Args: []string{"ignore-term"}, Env: []string{"FROM_SPEC=yes"}}); err != nil {
		t.Fatal(err)
	}
	if err := env.rt.Start(ctx, id); err != nil {
		t.Fatal(err)
	}
	defer env.rt.Stop(ctx, id, 0)

	var out, errOut bytes.Buffer
	code, err := env.rt.Exec(ctx, id, ExecOptions{Cmd: []string{"/tool", "env", "FROM_SPEC"}, Stdout: &out, Stderr: &errOut})
	if err != nil || code != 0 || strings.TrimSpace(out.String()) != "FROM_SPEC=yes" {
		t.Fatalf("exec env: code %d, err %v, stdout %q, stderr %q", code, err, out.String(), errOut.String())
	}
	code, err = env.rt.Exec(ctx, id, ExecOptions{Cmd: []string{"/tool", "exit", "7"}})
	if err != nil || code != 7 {
		t.Fatalf("exec exit 7: code %d, err %v", code, err)
	}
	short, cancelShort := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancelShort()
	if _, err := env.rt.Exec(short, id, ExecOptions{Cmd: []string{"/tool", "tick"}, Stdout: io.Discard}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("exec past its deadline: %v, want DeadlineExceeded", err)
	}
	if _, err := env.rt.Exec(ctx, id, ExecOptions{Cmd: []string{"/nope"}}); err == nil {
		t.Fatal("exec of a missing binary succeeded")
	}
}
