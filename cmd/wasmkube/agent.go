package main

import (
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/wasmkube/wasmkube/internal/version"
	"github.com/wasmkube/wasmkube/runtime/agent"
	"github.com/wasmkube/wasmkube/runtime/agent/node"
	"github.com/wasmkube/wasmkube/runtime/images"
	"github.com/wasmkube/wasmkube/runtime/oci"
)

// agentFlags are the node's settings shared by `agent` and `up`.
type agentFlags struct {
	nodeName, nodeIP, containerd, bridge, clusterDNS string
	// clusterCIDR and serviceCIDR come from the server's flags under `up`,
	// from the agent's own under `agent`.
	clusterCIDR, serviceCIDR string
	sandboxBinary            string
	warmSandboxes            int
	kubeletPort              int
	maxPods                  int
	logMaxSize               string
	logMaxFiles              int
	imageGC                  images.GCPolicy
}

func (a *agentFlags) add(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&a.nodeName, "node-name", "", "name of the Node (default: the hostname)")
	f.StringVar(&a.nodeIP, "node-ip", "", "InternalIP of the node (default: the address of the default route's interface)")
	f.StringVar(&a.containerd, "containerd-address", "", "socket of a containerd to use; empty starts one under --data-dir")
	f.StringVar(&a.bridge, "bridge-name", agent.DefaultBridge, "node bridge the pods attach to")
	f.IntVar(&a.maxPods, "max-pods", node.DefaultMaxPods, "number of pods that can run on this node")
	f.IntVar(&a.kubeletPort, "kubelet-port", 10250, "port of the agent's HTTPS server for logs, exec, attach and port-forward (0 picks a free port)")
	f.StringVar(&a.logMaxSize, "container-log-max-size", "10Mi", "size at which a container's log file is rotated")
	f.IntVar(&a.logMaxFiles, "container-log-max-files", oci.DefaultLogMaxFiles, "most log files kept per container, the current one included")
	f.StringVar(&a.sandboxBinary, "sandbox-binary", "", "wasmkube-sandbox executable that runs pods' wasm containers (default: beside this binary, then in PATH)")
	f.IntVar(&a.warmSandboxes, "wasm-warm-sandboxes", agent.DefaultWarmSandboxes, "wasm sandbox processes kept started ahead of their pods, each with the module of one of the images started last already loaded (0 keeps none)")
	d := images.DefaultGCPolicy
	f.IntVar(&a.imageGC.HighThresholdPercent, "image-gc-high-threshold", d.HighThresholdPercent, "disk usage percent of containerd's filesystem at which unused images are removed; 100 disables image garbage collection")
	f.IntVar(&a.imageGC.LowThresholdPercent, "image-gc-low-threshold", d.LowThresholdPercent, "disk usage percent image garbage collection brings the disk down to")
	f.DurationVar(&a.imageGC.MinAge, "minimum-image-ttl-duration", d.MinAge, "minimum age of an unused image before it is garbage collected")
}

// config turns the flags into the agent's config.
func (a *agentFlags) config(dataDir string) (agent.Config, error) {
	cfg := agent.Config{
		DataDir:           dataDir,
		NodeName:          a.nodeName,
		ContainerdAddress: a.containerd,
		Bridge:            a.bridge,
		Version:           kubeletVersion(),
		Log:               slog.Default(),
		KubeletPort:       a.kubeletPort,
		ImageGC:           &a.imageGC,
		SandboxBinary:     a.sandboxBinary,
		WarmSandboxes:     a.warmSandboxes,
		MaxPods:           a.maxPods,
	}
	if a.warmSandboxes < 0 {
		return cfg, fmt.Errorf("--wasm-warm-sandboxes must not be negative, not %d", a.warmSandboxes)
	}
	if a.maxPods <= 0 {
		return cfg, fmt.Errorf("--max-pods must be positive, not %d", a.maxPods)
	}
	if err := a.imageGC.Validate(); err != nil {
		return cfg, err
	}
	if a.kubeletPort < 0 || a.kubeletPort > 65535 {
		return cfg, fmt.Errorf("--kubelet-port %d is not a port", a.kubeletPort)
	}
	size, err := resource.ParseQuantity(a.logMaxSize)
	if err != nil || size.Value() <= 0 {
		return cfg, fmt.Errorf("--container-log-max-size %q is not a positive quantity", a.logMaxSize)
	}
	if a.logMaxFiles < 2 {
		return cfg, fmt.Errorf("--container-log-max-files must be at least 2, not %d", a.logMaxFiles)
	}
	cfg.LogRotation = oci.LogRotation{MaxSize: size.Value(), MaxFiles: a.logMaxFiles}
	if a.nodeIP != "" {
		if cfg.NodeIP = net.ParseIP(a.nodeIP); cfg.NodeIP == nil {
			return cfg, fmt.Errorf("--node-ip %q is not an IP address", a.nodeIP)
		}
	}
	if a.clusterCIDR != "" {
		if cfg.ClusterCIDR, err = netip.ParsePrefix(a.clusterCIDR); err != nil || !cfg.ClusterCIDR.Addr().Is4() {
			return cfg, fmt.Errorf("--cluster-cidr %q is not an IPv4 CIDR", a.clusterCIDR)
		}
	}
	if a.serviceCIDR != "" {
		if cfg.ServiceCIDR, err = netip.ParsePrefix(a.serviceCIDR); err != nil || !cfg.ServiceCIDR.Addr().Is4() {
			return cfg, fmt.Errorf("--service-cluster-ip-range %q is not an IPv4 CIDR", a.serviceCIDR)
		}
	}
	if a.clusterDNS != "" {
		if cfg.ClusterDNS = net.ParseIP(a.clusterDNS); cfg.ClusterDNS == nil {
			return cfg, fmt.Errorf("--cluster-dns %q is not an IP address", a.clusterDNS)
		}
	}
	return cfg, nil
}

func newAgentCommand() *cobra.Command {
	var flags agentFlags
	var server, kubeconfig, dataDir string
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Run the node agent: registers the Node and runs the pods bound to it",
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := flags.config(dataDir)
			if err != nil {
				return err
			}
			rc, err := clientcmd.BuildConfigFromFlags(server, kubeconfig)
			if err != nil {
				return fmt.Errorf("credentials for the API server: %w", err)
			}
			out := cmd.ErrOrStderr()
			cfg.Progress = func(step string) { fmt.Fprintln(out, step) }
			cfg.OnReady = func(name string) {
				fmt.Fprintf(out, "node %s is Ready\n", name)
				trimStartupMemory()
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			return agent.Run(ctx, rc, cfg)
		},
	}
	f := cmd.Flags()
	f.StringVar(&server, "server", "", "URL of the API server (overrides the kubeconfig's)")
	f.StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig with the node's credentials (required)")
	f.StringVar(&dataDir, "data-dir", "", "directory for the node's containerd, pods, logs and network state (required)")
	f.StringVar(&flags.clusterDNS, "cluster-dns", "10.96.0.10", "nameserver of pods with dnsPolicy ClusterFirst")
	f.StringVar(&flags.clusterCIDR, "cluster-cidr", "10.244.0.0/16", "CIDR holding every pod address of the cluster; pod traffic leaving it is masqueraded")
	f.StringVar(&flags.serviceCIDR, "service-cluster-ip-range", "10.96.0.0/12", "the cluster's Service ClusterIP range, never masqueraded")
	flags.add(cmd)
	cmd.AddCommand(newAgentServicesCommand())
	_ = cmd.MarkFlagRequired("kubeconfig")
	_ = cmd.MarkFlagRequired("data-dir")
	return cmd
}

// kubeletVersion is what the node reports as its kubelet version: the
// Kubernetes version this build serves, marked as ours.
func kubeletVersion() string { return version.Kubernetes + "+wasmkube" }
