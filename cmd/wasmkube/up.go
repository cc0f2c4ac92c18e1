package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/wasmkube/wasmkube/control/server"
	"github.com/wasmkube/wasmkube/runtime/agent"
)

// newUpCommand is the all-in-one edge node: the control plane and the node
// agent in one process.
func newUpCommand() *cobra.Command {
	opts := server.Options{}
	var flags agentFlags
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Run an all-in-one edge node (control plane with embedded etcd, plus the node agent)",
		RunE: func(cmd *cobra.Command, args []string) error {
			flags.clusterCIDR, flags.serviceCIDR = opts.ClusterCIDR, opts.ServiceClusterIPRange
			cfg, err := flags.config(opts.DataDir)
			if err != nil {
				return err
			}
			out := cmd.ErrOrStderr()
			fmt.Fprintf(out, "[1/4] starting the control plane (etcd in %s/etcd) ...\n", opts.DataDir)
			return runControlPlane(cmd, opts, func(ctx context.Context, out io.Writer, s *server.Server, took time.Duration) <-chan error {
				fmt.Fprintf(out, "[2/4] API server ready on %s (%s)\n", s.URL(), took.Round(time.Millisecond))
				start := time.Now()
				fmt.Fprintf(out, "[3/4] starting the node agent (containerd in %s) ...\n", filepath.Join(cfg.DataDir, "containerd"))
				cfg.ClusterDNS = s.DNSServiceIP()
				cfg.Progress = func(step string) { fmt.Fprintf(out, "      %s\n", step) }
				cfg.OnReady = func(name string) {
					fmt.Fprintf(out, "[4/4] node %s is Ready (%s)\n\n", name, time.Since(start).Round(time.Millisecond))
					fmt.Fprintf(out, "Use it with:\n  export KUBECONFIG=%s\n  wasmkube kubectl get nodes\n\n", s.KubeconfigPath())
				}
				done := make(chan error, 1)
				go func() {
					err := agent.Run(ctx, s.LoopbackConfig(), cfg)
					if err != nil {
						err = fmt.Errorf("node agent: %w", err)
					}
					done <- err
				}()
				return done
			})
		},
	}
	addServerFlags(cmd, &opts)
	flags.add(cmd)
	return cmd
}
