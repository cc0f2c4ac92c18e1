package agent

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/containerd/containerd"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	certutil "k8s.io/client-go/util/cert"

	"github.com/wasmkube/wasmkube/runtime/agent/envvars"
	"github.com/wasmkube/wasmkube/runtime/agent/node"
	"github.com/wasmkube/wasmkube/runtime/agent/pods"
	"github.com/wasmkube/wasmkube/runtime/agent/server"
	"github.com/wasmkube/wasmkube/runtime/agent/volumes"
	ctrd "github.com/wasmkube/wasmkube/runtime/containerd"
	"github.com/wasmkube/wasmkube/runtime/images"
	"github.com/wasmkube/wasmkube/runtime/oci"
	"github.com/wasmkube/wasmkube/runtime/wasmpod"
	"github.com/wasmkube/wasmkube/sandbox/cgroups"
	"github.com/wasmkube/wasmkube/sandbox/ipam"
	"github.com/wasmkube/wasmkube/sandbox/network"
)

// Config describes the node.
type Config struct {
	// DataDir holds everything the agent keeps: containerd/ (when it runs
	// its own), pods/, netns/, ipam/, logs/.
	DataDir string
	// NodeName defaults to the hostname.
	NodeName string
	// NodeIP defaults to the address of the default route's interface.
	NodeIP net.IP
	// ContainerdAddress is the socket of a containerd to use; "" starts
	// and supervises one under DataDir.
	ContainerdAddress string
	// Bridge is the node bridge pods attach to. Default wk0.
	Bridge string
	// ClusterDNS is the nameserver of ClusterFirst pods.
	ClusterDNS net.IP
	// Version is reported as the node's kubelet version.
	Version string
	// ImageGC is the image garbage collection policy; nil is kubelet's
	// default (85%/80%, 2m).
	ImageGC *images.GCPolicy
	// Log receives the agent's messages. Default slog.Default().
	Log *slog.Logger
	// Progress, when set, is told of each start step ("containerd ready").
	Progress func(step string)
	// OnReady is called once the Node is Ready.
	OnReady func(nodeName string)
	// KubeletPort is where the agent serves logs, exec, attach and
	// port-forward to the API server; 0 picks a free port.
	KubeletPort int
	// LogRotation bounds container logs on disk; zero fields take the
	// kubelet's defaults (10Mi, 5 files).
	LogRotation oci.LogRotation
	// SandboxBinary is the wasmkube-sandbox executable that hosts each
	// pod's wasm containers; "" looks beside the agent's own executable,
	// then in PATH.
	SandboxBinary string
	// WarmSandboxes is how many wasm sandboxes are kept started ahead of
	// their pods (wasmpod.Config.WarmSandboxes).
	WarmSandboxes int
	// MaxPods is the node's pods capacity (kubelet's --max-pods); 0 is
	// upstream's default, 110.
	MaxPods int
	// ClusterCIDR holds every pod address of the cluster: pod traffic to
	// anything outside it and ServiceCIDR is masqueraded as the node IP.
	ClusterCIDR netip.Prefix
	// ServiceCIDR is the Service ClusterIP range.
	ServiceCIDR netip.Prefix
	// BPFDir is where the Service datapath's maps and links are pinned,
	// in a directory per node; "" is DefaultBPFDir.
	BPFDir string
}

// imageGCPeriod is how often the disk is checked against the image GC
// thresholds: one statfs, and a listing only when above the high one.
const imageGCPeriod = time.Minute

// DefaultBridge is the node bridge's name.
const DefaultBridge = "wk0"

// Run runs the agent until ctx ends. Pods keep running after it returns;
// the next agent adopts them.
func Run(ctx context.Context, restConfig *rest.Config, cfg Config) error {
	if cfg.DataDir == "" {
		return errors.New("agent: a data directory is required")
	}
	if cfg.Bridge == "" {
		cfg.Bridge = DefaultBridge
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	progress := cfg.Progress
	if progress == nil {
		progress = func(string) {}
	}
	dir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return fmt.Errorf("agent: data dir: %w", err)
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("agent: data dir: %w", err)
	}

	address := cfg.ContainerdAddress
	if address == "" {
		sup, err := ctrd.Start(ctx, ctrd.Config{Dir: filepath.Join(dir, "containerd"), Logger: cfg.Log})
		if err != nil {
			return fmt.Errorf("agent: %w", err)
		}
		defer sup.Stop()
		address = sup.Address()
	}
	cc, err := containerd.New(address, containerd.WithTimeout(10*time.Second))
	if err != nil {
		return fmt.Errorf("agent: connect to containerd at %s: %w", address, err)
	}
	defer cc.Close()
	version, err := cc.Version(ctx)
	if err != nil {
		return fmt.Errorf("agent: containerd at %s: %w", address, err)
	}
	progress(fmt.Sprintf("containerd %s ready", version.Version))

	kubeletListener, err := server.Listen("", cfg.KubeletPort)
	if err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	defer kubeletListener.Close()
	clientCAs, err := clusterCA(restConfig)
	if err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	gcPolicy := images.DefaultGCPolicy
	if cfg.ImageGC != nil {
		gcPolicy = *cfg.ImageGC
	}
	if err := gcPolicy.Validate(); err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	wasmStore := images.NewStore(cc)
	sandboxBin, wasmErr := sandboxBinary(cfg.SandboxBinary)
	if wasmErr != nil {
		cfg.Log.Warn("agent: this node runs no wasm containers", "err", wasmErr)
	}
	// Set once the pod manager's wasm runtime exists; the collector's
	// first pass comes later.
	var wasmRT atomic.Pointer[wasmpod.Runtime]
	imageGC := &images.GC{Client: cc, Path: dir, Policy: gcPolicy, Log: cfg.Log,
		OnRemove: func(ctx context.Context, digest string) {
			if err := forgetWasmImage(wasmStore, wasmRT.Load(), dir, digest); err != nil {
				cfg.Log.Warn("agent: wasm files of a removed image", "image", digest, "err", err)
			}
		}}
	if cfg.ContainerdAddress == "" {
		imageGC.Path = filepath.Join(dir, "containerd")
	}

	rc := rest.CopyConfig(restConfig)
	rc.QPS, rc.Burst = 50, 100
	rc.UserAgent = "wasmkube-agent"
	client, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return fmt.Errorf("agent: %w", err)
	}

	var networkReady atomic.Bool
	nodeAgent, err := node.New(client, node.Config{
		Name:           cfg.NodeName,
		NodeIP:         cfg.NodeIP,
		RuntimeVersion: "containerd://" + version.Version,
		KubeletVersion: cfg.Version,
		KubeletPort:    int32(kubeletListener.Addr().(*net.TCPAddr).Port),
		DataDir:        dir,
		Wasm:           wasmErr == nil,
		MaxPods:        cfg.MaxPods,
		Log:            cfg.Log,
		Ready: func() error {
			if !networkReady.Load() {
				return errors.New("pod network is not ready: waiting for the node's pod CIDR")
			}
			if ok, err := cc.IsServing(ctx); !ok || err != nil {
				return fmt.Errorf("container runtime is down: %v", err)
			}
			return nil
		},
	})
	if err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	// A restarted agent knows its pod range: its bridge is up again before
	// the Node's first status, so that the Node never reads NotReady and
	// its running pods are never marked unready (which would empty their
	// Services' backends) just because the agent restarted.
	if kept, ok := keptPodCIDR(dir); ok {
		if err := network.EnsureBridge(cfg.Bridge, ipam.Gateway(kept)); err == nil {
			networkReady.Store(true)
		}
	}
	name := nodeAgent.Name()
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	wg.Go(func() { _ = nodeAgent.Run(ctx) })
	if err := startLocalPath(ctx, &wg, client, name, dir, cfg.Log); err != nil {
		return err
	}
	wg.Go(func() { imageGC.Run(ctx, imageGCPeriod) })

	cidr, err := podCIDR(ctx, client, name, dir, cfg.Log)
	if err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	wasm, wasmErr := newWasmRuntime(ctx, wasmErr, sandboxBin, wasmStore, cfg, dir)
	wasmRT.Store(wasm)
	if wasm != nil {
		defer wasm.Close()
	}
	manager, cgm, rt, err := newPodManager(client, cc, wasmpod.Mux{Wasm: wasm, WasmErr: wasmErr}, cfg, dir, name, nodeAgent.NodeIP(), cidr)
	if err != nil {
		return err
	}
	kubeletServer, err := server.New(server.Config{
		Listener: kubeletListener, CertDir: filepath.Join(dir, "pki"),
		Hostname: name, IPs: []net.IP{nodeAgent.NodeIP()}, ClientCAs: clientCAs,
		Pods: manager, Runtime: rt, Log: cfg.Log,
	})
	if err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	wg.Go(func() {
		if err := kubeletServer.Serve(ctx); err != nil {
			cfg.Log.Error("agent: kubelet server stopped", "err", err)
		}
	})
	defer func() {
		if err := cgm.Release(); err != nil {
			cfg.Log.Warn("agent: pods' parent cgroup", "err", err)
		}
	}()
	if err := startServices(ctx, &wg, client, cfg, serviceNetwork{
		nodeName: name, nodeIP: addrOf(nodeAgent.NodeIP()), gateway: addrOf(ipam.Gateway(cidr).IP),
		cluster: clusterOf(cfg.ClusterCIDR, cidr), services: cfg.ServiceCIDR, bridge: cfg.Bridge,
		podCIDR: prefixOf(cidr), podsCgroup: cgm.Parent(),
	}); err != nil {
		return err
	}
	networkReady.Store(true)
	nodeAgent.Refresh()
	progress(fmt.Sprintf("pod network %s on %s", cidr, cfg.Bridge))
	if cfg.OnReady != nil {
		wg.Go(func() {
			if waitNodeReady(ctx, client, name) == nil {
				cfg.OnReady(name)
			}
		})
	}
	return manager.Run(ctx)
}

// newPodManager sets up the pod network and wires the pod worker.
// rt gets its OCI runtime here, under the pods' cgroup parent.
func newPodManager(client kubernetes.Interface, cc *containerd.Client, rt wasmpod.Mux, cfg Config, dir, nodeName string, nodeIP net.IP, cidr *net.IPNet) (*pods.Manager, *cgroups.Manager, wasmpod.Mux, error) {
	alloc, err := ipam.New(filepath.Join(dir, "ipam"), cidr.String())
	if err != nil {
		return nil, nil, rt, fmt.Errorf("agent: %w", err)
	}
	if err := network.EnsureBridge(cfg.Bridge, alloc.Gateway()); err != nil {
		return nil, nil, rt, fmt.Errorf("agent: %w", err)
	}
	// Named after the node: the agent removes pod cgroups it does not
	// know, so two agents on one machine (tests run several) must never
	// share a parent.
	cgm, err := cgroups.NewManager(path.Join("/wasmkube", nodeName))
	if err != nil {
		return nil, nil, rt, fmt.Errorf("agent: %w", err)
	}
	podsDir := filepath.Join(dir, "pods")
	sandboxes, err := pods.NewSandboxes(pods.SandboxConfig{
		NetnsDir: filepath.Join(dir, "netns"), Bridge: cfg.Bridge, IPAM: alloc, Cgroups: cgm,
		PodsDir: podsDir, ClusterDNS: cfg.ClusterDNS, NodeIP: nodeIP, Log: cfg.Log,
	})
	if err != nil {
		return nil, nil, rt, err
	}
	objs := newObjects(client, 5*time.Second)
	rt.OCI = oci.New(cc, oci.WithNamespace(images.Namespace), oci.WithLogDir(filepath.Join(dir, "logs")),
		oci.WithFIFODir(filepath.Join(dir, "fifo")), oci.WithCgroupParent(cgm.Parent()), oci.WithLogRotation(logRotation(cfg)))
	mgr, err := pods.New(pods.Config{
		NodeName:  nodeName,
		NodeIP:    nodeIP,
		Client:    client,
		Runtime:   rt,
		Images:    imageStore{client: cc},
		Sandboxes: sandboxes,
		Volumes:   podVolumes{volumes.New(podsDir, objs, volumes.WithLogger(cfg.Log), volumes.WithClaims(objs))},
		Env: func(ctx context.Context, pod *corev1.Pod, c *corev1.Container, podIPs []string) ([]string, error) {
			env, _, err := envvars.Resolve(ctx, objs, pod, c, envvars.Options{
				HostIPs: []string{nodeIP.String()}, PodIPs: podIPs,
			})
			return env, err
		},
		Dir: dir,
		Log: cfg.Log,
	})
	return mgr, cgm, rt, err
}

// logRotation is the configured rotation with the kubelet's defaults.
func logRotation(cfg Config) oci.LogRotation {
	rotation := cfg.LogRotation
	if rotation.MaxSize == 0 {
		rotation.MaxSize = oci.DefaultLogMaxSize
	}
	if rotation.MaxFiles == 0 {
		rotation.MaxFiles = oci.DefaultLogMaxFiles
	}
	return rotation
}

// waitNodeReady polls the Node until its Ready condition is True.
func waitNodeReady(ctx context.Context, client kubernetes.Interface, name string) error {
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		n, err := client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err == nil {
			for _, c := range n.Status.Conditions {
				if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
					return nil
				}
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// clusterCA is the CA the agent trusts for the API server, which also
// signs the clients the agent's own server accepts.
func clusterCA(rc *rest.Config) (*x509.CertPool, error) {
	switch {
	case len(rc.TLSClientConfig.CAData) > 0:
		pool, err := certutil.NewPoolFromBytes(rc.TLSClientConfig.CAData)
		if err != nil {
			return nil, fmt.Errorf("cluster CA: %w", err)
		}
		return pool, nil
	case rc.TLSClientConfig.CAFile != "":
		pool, err := certutil.NewPool(rc.TLSClientConfig.CAFile)
		if err != nil {
			return nil, fmt.Errorf("cluster CA: %w", err)
		}
		return pool, nil
	}
	return nil, errors.New("cluster CA: the API server credentials name no CA, so no client of the kubelet port could be verified")
}
