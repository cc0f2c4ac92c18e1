package e2e

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/namespaces"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/wasmkube/wasmkube/runtime/images"
)

// SplitNodeOptions configure StartSplitNode. Zero fields get values unique
// to the test, as in NodeOptions.
type SplitNodeOptions struct {
	// Name is the agent's --node-name.
	Name string
	// ClusterCIDR is the server's --cluster-cidr.
	ClusterCIDR string
	// Bridge is the agent's --bridge-name.
	Bridge string
	// ServerArgs are extra flags for `wasmkube server`.
	ServerArgs []string
	// AgentArgs are extra flags for every `wasmkube agent` the node runs,
	// restarts included.
	AgentArgs []string
}

// SplitNode is a control plane and a node agent in two processes, `wasmkube
// server` and `wasmkube agent`, so that either can be stopped, killed and
// started again on its own. The embedded Node is the control plane side
// (its Server, Client and the node's names), which the helpers written for
// `wasmkube up` work with; the agent keeps its files in AgentDir.
type SplitNode struct {
	*Node
	Agent    *Process
	AgentDir string

	t          testing.TB
	serverArgs []string
	agentArgs  []string
	// agentKubeconfig is a copy of the admin kubeconfig: the server
	// rewrites its own when it starts again, and an agent started while
	// the server is down must still find one.
	agentKubeconfig string
	// procs are the processes spawn started, and logDir their logs.
	procs   []*Process
	spawned int
	logDir  string
}

// StartSplitNode runs `wasmkube server` and `wasmkube agent` on loopback and
// returns once the Node is Ready and the agent has said so. Its cleanup is
// StartNode's: every pod deleted and finalized, both processes stopped with
// a clean exit, and a failure for anything pods left on the machine.
func StartSplitNode(t testing.TB, opts SplitNodeOptions) *SplitNode {
	t.Helper()
	nodeIdentity(t, &opts.Name, &opts.ClusterCIDR, &opts.Bridge)
	serviceCIDR := freeServiceCIDR(t)
	srv := StartServer(t, ServerOptions{Args: append([]string{"--cluster-cidr", opts.ClusterCIDR, "--service-cluster-ip-range", serviceCIDR}, opts.ServerArgs...)})
	// Started again on the same port, so that the agent's kubeconfig
	// still points at it.
	u, err := url.Parse(srv.RESTConfig(t).Host)
	if err != nil {
		t.Fatal(err)
	}
	n := &SplitNode{
		Node: &Node{
			Server:      srv,
			Name:        opts.Name,
			Bridge:      opts.Bridge,
			ClusterCIDR: opts.ClusterCIDR,
			ServiceCIDR: serviceCIDR,
		},
		AgentDir:   t.TempDir(),
		logDir:     t.TempDir(),
		t:          t,
		serverArgs: append([]string{"server", "--data-dir", srv.DataDir, "--bind-address", "127.0.0.1", "--secure-port", u.Port(), "--cluster-cidr", opts.ClusterCIDR, "--service-cluster-ip-range", serviceCIDR}, opts.ServerArgs...),
		// A free kubelet port, so that nodes of concurrent tests never collide.
		agentArgs: append([]string{"--kubelet-port=0", "--cluster-cidr", opts.ClusterCIDR, "--service-cluster-ip-range", serviceCIDR, "--cluster-dns", dnsServiceIP(t, serviceCIDR)}, opts.AgentArgs...),
	}
	n.agentKubeconfig = filepath.Join(n.AgentDir, "kubeconfig")
	b, err := os.ReadFile(srv.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(n.agentKubeconfig, b, 0o600); err != nil {
		t.Fatal(err)
	}
	client, err := kubernetes.NewForConfig(srv.RESTConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	n.Client = client
	n.pods = trackPods(client, n.Name)
	t.Cleanup(func() { n.shutdown(t) })
	n.StartAgent(t)
	return n
}

// StartAgent starts a `wasmkube agent` on the node's data directory (again,
// after KillAgent or StopAgent) and waits until it prints that the Node is
// Ready. While the server is down it cannot know, so it waits for the
// agent to report its pods in the log instead; see StartAgentOffline.
func (n *SplitNode) StartAgent(t testing.TB) {
	t.Helper()
	n.startAgent(t)
	n.waitAgentLog(t, fmt.Sprintf("node %s is Ready", n.Name), NodeReadyTimeout)
}

// StartAgentOffline starts the agent while the server is down and waits
// until its pod worker runs from the pods cached on disk.
func (n *SplitNode) StartAgentOffline(t testing.TB) {
	t.Helper()
	n.startAgent(t)
	n.waitAgentLog(t, "pods: running the pods cached on disk", NodeReadyTimeout)
}

func (n *SplitNode) startAgent(t testing.TB) {
	t.Helper()
	if n.Agent != nil && !n.Agent.Exited() {
		t.Fatalf("agent %d still runs", n.Agent.PID())
	}
	args := append([]string{"agent", "--kubeconfig", n.agentKubeconfig, "--data-dir", n.AgentDir,
		"--node-name", n.Name, "--bridge-name", n.Bridge}, n.agentArgs...)
	n.Agent = n.spawn(t, "agent", args)
	n.Agent.StopTimeout = NodeStopTimeout
}

// waitAgentLog waits until the current agent's log has a line with text.
func (n *SplitNode) waitAgentLog(t testing.TB, text string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		b, err := os.ReadFile(n.Agent.LogPath)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), text) {
			return
		}
		if n.Agent.Exited() {
			t.Fatalf("agent exited before printing %q: %v\n%s", text, n.Agent.err, tail(n.Agent.LogPath, 8<<10))
		}
		if time.Now().After(deadline) {
			t.Fatalf("agent printed no line with %q within %s\nagent log (tail):\n%s", text, timeout, tail(n.Agent.LogPath, 8<<10))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// KillAgent ends the agent with SIGKILL, as a crash or the OOM killer
// would, and waits for it to be gone.
func (n *SplitNode) KillAgent(t testing.TB) {
	t.Helper()
	n.Agent.kill(t)
}

// StopServer stops the API server with SIGTERM; it must exit cleanly.
func (n *SplitNode) StopServer(t testing.TB) {
	t.Helper()
	n.Server.Process.Stop(t)
	if t.Failed() {
		t.FailNow()
	}
}

// RestartServer starts the API server again on its data directory and
// port and waits until it is ready.
func (n *SplitNode) RestartServer(t testing.TB) {
	t.Helper()
	if !n.Server.Exited() {
		t.Fatal("the server still runs")
	}
	n.Server.Process = n.spawn(t, "server", n.serverArgs)
	n.Server.waitReady(t, false)
}

// spawn starts a process of the node whose stop and log are left to the
// node's cleanup: StartProcess's own cleanups would run before it, and
// stop the agent while its pods still need it.
func (n *SplitNode) spawn(t testing.TB, name string, args []string) *Process {
	t.Helper()
	n.spawned++
	logPath := filepath.Join(n.logDir, fmt.Sprintf("%s-%d.log", name, n.spawned))
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close() // the child holds its own descriptor
	cmd := exec.Command(n.Bin, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	p := &Process{Name: name, LogPath: logPath, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	n.procs = append(n.procs, p)
	return p
}

// kill sends SIGKILL and waits for the exit; the stop at cleanup then has
// nothing left to do.
func (p *Process) kill(t testing.TB) {
	t.Helper()
	p.stopOnce.Do(func() {
		if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Errorf("killing %s: %v", p.Name, err)
		}
		<-p.done
	})
}

// AgentContainerdSocket is the socket of the agent's own containerd.
func (n *SplitNode) AgentContainerdSocket() string {
	return filepath.Join(n.AgentDir, "containerd", "containerd.sock")
}

// ImportImage imports an image archive into the agent's image store.
func (n *SplitNode) ImportImage(t testing.TB, archive string) {
	t.Helper()
	importImage(t, n.Bin, n.AgentDir, archive)
}

// agentContainerd connects to the agent's containerd; the caller closes
// the client.
func (n *SplitNode) agentContainerd(t testing.TB) *containerd.Client {
	t.Helper()
	cc, err := containerd.New(n.AgentContainerdSocket(), containerd.WithTimeout(10*time.Second))
	if err != nil {
		t.Fatalf("connect to the agent's containerd: %v", err)
	}
	return cc
}

// agentContainers calls fn with every container of the agent's
// containerd and a context for asking about them.
func (n *SplitNode) agentContainers(t testing.TB, fn func(ctx context.Context, cs []containerd.Container)) {
	t.Helper()
	cc := n.agentContainerd(t)
	defer cc.Close()
	ctx, cancel := context.WithTimeout(namespaces.WithNamespace(context.Background(), images.Namespace), 30*time.Second)
	defer cancel()
	cs, err := cc.Containers(ctx)
	if err != nil {
		t.Fatalf("list containers: %v", err)
	}
	fn(ctx, cs)
}

// ContainerIDs lists every container of the agent's containerd, running
// or not.
func (n *SplitNode) ContainerIDs(t testing.TB) []string {
	t.Helper()
	var out []string
	n.agentContainers(t, func(_ context.Context, cs []containerd.Container) {
		for _, c := range cs {
			out = append(out, c.ID())
		}
	})
	return out
}

// ImageNames lists the images in the agent's containerd.
func (n *SplitNode) ImageNames(t testing.TB) []string {
	t.Helper()
	cc := n.agentContainerd(t)
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	imgs, err := images.List(ctx, cc)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]string, 0, len(imgs))
	for _, img := range imgs {
		out = append(out, img.Name)
	}
	return out
}

// TaskPIDs maps each running container of the agent's containerd to the
// pid of its task.
func (n *SplitNode) TaskPIDs(t testing.TB) map[string]uint32 {
	t.Helper()
	out := map[string]uint32{}
	n.agentContainers(t, func(ctx context.Context, cs []containerd.Container) {
		for _, c := range cs {
			task, err := c.Task(ctx, nil)
			if err != nil {
				continue
			}
			st, err := task.Status(ctx)
			if err == nil && st.Status == containerd.Running {
				out[c.ID()] = task.Pid()
			}
		}
	})
	return out
}

// agentSide is the agent's view for the leftover checks: its data
// directory and process.
func (n *SplitNode) agentSide() *Node {
	return &Node{Server: &Server{DataDir: n.AgentDir, Process: n.Agent}, Name: n.Name, Bridge: n.Bridge}
}

// PodLeftovers lists what pod uid still holds on the machine.
func (n *SplitNode) PodLeftovers(uid types.UID) []string {
	return n.agentSide().PodLeftovers(uid)
}

// Sandboxes lists the pods that hold an address claim or a netns pin in
// the agent's data directory.
func (n *SplitNode) Sandboxes(t testing.TB) map[types.UID][]string {
	t.Helper()
	out := map[types.UID][]string{}
	claims, _ := os.ReadDir(filepath.Join(n.AgentDir, "ipam"))
	for _, e := range claims {
		if net.ParseIP(e.Name()) == nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join(n.AgentDir, "ipam", e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		uid := types.UID(strings.TrimSpace(string(b)))
		out[uid] = append(out[uid], "ip "+e.Name())
	}
	pins, _ := os.ReadDir(filepath.Join(n.AgentDir, "netns"))
	for _, e := range pins {
		out[types.UID(e.Name())] = append(out[types.UID(e.Name())], "netns")
	}
	return out
}

// shutdown is StartSplitNode's cleanup: StartNode's, for two processes.
func (n *SplitNode) shutdown(t testing.TB) {
	t.Helper()
	agentUp := n.Agent != nil && !n.Agent.Exited()
	if n.Server.Exited() {
		// A test that failed with the server down: bring it back so the
		// agent can finalize the pods.
		n.Server.Process = n.spawn(t, "server", n.serverArgs)
		n.Server.waitReady(t, false)
	}
	defer func() {
		if !t.Failed() {
			return
		}
		for _, p := range n.procs {
			t.Logf("%s log (%s):\n%s", p.Name, p.LogPath, tail(p.LogPath, logTail))
		}
	}()
	if !agentUp && n.Agent != nil {
		// A test that failed with the agent down: the pods need one to
		// be finalized.
		n.startAgent(t)
	}
	n.deleteAllPods(t)
	if n.Agent != nil {
		n.Agent.Stop(t)
	}
	n.Server.Process.Stop(t)
	n.pods.stop()
	n.agentSide().checkStopped(t, n.pods.uids())
}
