package main

import (
	"context"
	"fmt"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/wasmkube/wasmkube/control/manager"
	"github.com/wasmkube/wasmkube/control/server"
)

// newUpCommand is the all-in-one edge node: the control plane and, on this
// same process, everything else a single node runs.
func newUpCommand() *cobra.Command {
	opts := server.Options{}
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Run an all-in-one edge node (control plane with embedded etcd, plus the node's components)",
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			out := cmd.ErrOrStderr()
			fmt.Fprintf(out, "[1/2] starting the control plane (etcd in %s/etcd) ...\n", opts.DataDir)
			start := time.Now()
			s, err := server.Start(ctx, opts)
			if err != nil {
				return err
			}
			if err := manager.Start(ctx, s.LoopbackConfig()); err != nil {
				return err
			}
			fmt.Fprintf(out, "[2/2] API server ready on %s (%s)\n\n", s.URL(), time.Since(start).Round(time.Millisecond))
			fmt.Fprintf(out, "Use it with:\n  export KUBECONFIG=%s\n  wasmkube kubectl get namespaces\n\n", s.KubeconfigPath())
			trimStartupMemory()
			<-ctx.Done()
			fmt.Fprintln(out, "shutting down")
			shutdownCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			return s.Shutdown(shutdownCtx)
		},
	}
	addServerFlags(cmd, &opts)
	return cmd
}
