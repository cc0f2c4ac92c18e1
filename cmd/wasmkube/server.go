package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/wasmkube/wasmkube/control/controllers/nodeipam"
	"github.com/wasmkube/wasmkube/control/controllers/servicelb"
	"github.com/wasmkube/wasmkube/control/manager"
	"github.com/wasmkube/wasmkube/control/server"
)

func newServerCommand() *cobra.Command {
	opts := server.Options{}
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run the control plane: API server on etcd (embedded unless --etcd-servers is given)",
		RunE: func(cmd *cobra.Command, args []string) error {
			return runControlPlane(cmd, opts, func(_ context.Context, out io.Writer, s *server.Server, _ time.Duration) <-chan error {
				fmt.Fprintf(out, "wasmkube server is serving on %s\nkubeconfig: %s\n", s.URL(), s.KubeconfigPath())
				return nil
			})
		},
	}
	addServerFlags(cmd, &opts)
	return cmd
}

// runControlPlane starts the API server and the components beside it, calls
// ready once it serves, and shuts down cleanly on SIGTERM or SIGINT. What
// ready starts runs until its ctx ends and reports its end on the channel
// it returns (nil when it starts nothing). It is stopped and waited for
// before anything else, so a node agent in the same process stops while
// the API server still answers; if it ends by itself, the process stops
// with its error.
func runControlPlane(cmd *cobra.Command, opts server.Options, ready func(ctx context.Context, out io.Writer, s *server.Server, took time.Duration) <-chan error) error {
	ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	ipam := nodeipam.Options{ClusterCIDR: opts.ClusterCIDR, NodeMaskSize: opts.NodeCIDRMaskSize}
	if err := ipam.Validate(); err != nil {
		return fmt.Errorf("--cluster-cidr %s, --node-cidr-mask-size %d: %w", opts.ClusterCIDR, opts.NodeCIDRMaskSize, err)
	}
	if _, err := servicelb.ParsePool(opts.LoadBalancerIPRange); err != nil {
		return fmt.Errorf("--loadbalancer-ip-range: %w", err)
	}
	start := time.Now()
	s, err := server.Start(ctx, opts)
	if err != nil {
		return err
	}
	// The scheduler and controllers stop first, releasing their leases
	// while the API server still answers.
	components, stopComponents := context.WithCancel(context.Background())
	defer stopComponents()
	waitComponents, err := manager.Start(components, s.LoopbackConfig(), manager.Options{
		ClusterCIDR: opts.ClusterCIDR, NodeCIDRMaskSize: opts.NodeCIDRMaskSize, LoadBalancerIPRange: opts.LoadBalancerIPRange,
	})
	if err != nil {
		return err
	}
	beside, stopBeside := context.WithCancel(context.Background())
	defer stopBeside()
	besideDone := ready(beside, cmd.ErrOrStderr(), s, time.Since(start))
	trimStartupMemory()
	var besideErr error
	select {
	case <-ctx.Done():
		stopBeside()
		if besideDone != nil {
			besideErr = <-besideDone
		}
	case besideErr = <-besideDone:
	}
	stopComponents()
	waitComponents()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return errors.Join(besideErr, s.Shutdown(shutdownCtx))
}

func addServerFlags(cmd *cobra.Command, opts *server.Options) {
	f := cmd.Flags()
	f.StringVar(&opts.DataDir, "data-dir", "", "directory for etcd data, TLS material and the admin kubeconfig (required)")
	f.StringVar(&opts.BindAddress, "bind-address", "127.0.0.1", "address the API server listens on")
	f.IntVar(&opts.SecurePort, "secure-port", 6443, "HTTPS port of the API server")
	f.StringSliceVar(&opts.EtcdServers, "etcd-servers", nil, "external etcd endpoints (URL,...); an embedded etcd is started when empty")
	f.StringVar(&opts.ServiceClusterIPRange, "service-cluster-ip-range", "10.96.0.0/12", "CIDR from which Service cluster IPs are allocated")
	f.StringVar(&opts.ClusterCIDR, "cluster-cidr", "10.244.0.0/16", "CIDR from which node pod CIDRs are allocated")
	f.IntVar(&opts.NodeCIDRMaskSize, "node-cidr-mask-size", 0, "mask size for node cidr in cluster; 0 is 24 for IPv4 and 64 for IPv6")
	f.StringVar(&opts.LoadBalancerIPRange, "loadbalancer-ip-range", "", "addresses LoadBalancer Services are given, as a CIDR or a range first-last (e.g. 192.0.2.10-192.0.2.20); empty leaves them pending")
	_ = cmd.MarkFlagRequired("data-dir")
}
