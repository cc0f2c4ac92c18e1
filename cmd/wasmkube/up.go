package main

import (
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/wasmkube/wasmkube/control/server"
)

// newUpCommand is the all-in-one edge node: the control plane and, in this
// same process, everything else a single node runs.
func newUpCommand() *cobra.Command {
	opts := server.Options{}
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Run an all-in-one edge node (control plane with embedded etcd, plus the node's components)",
		RunE: func(cmd *cobra.Command, args []string) error {
			fmt.Fprintf(cmd.ErrOrStderr(), "[1/2] starting the control plane (etcd in %s/etcd) ...\n", opts.DataDir)
			return runControlPlane(cmd, opts, func(out io.Writer, s *server.Server, took time.Duration) {
				fmt.Fprintf(out, "[2/2] API server ready on %s (%s)\n\n", s.URL(), took.Round(time.Millisecond))
				fmt.Fprintf(out, "Use it with:\n  export KUBECONFIG=%s\n  wasmkube kubectl get namespaces\n\n", s.KubeconfigPath())
			})
		},
	}
	addServerFlags(cmd, &opts)
	return cmd
}
