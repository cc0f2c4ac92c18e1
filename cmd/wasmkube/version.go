package main

import (
	"fmt"
	"runtime"

	"github.com/spf13/cobra"

	"github.com/wasmkube/wasmkube/internal/version"
)

func newVersionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the wasmkube and Kubernetes API versions",
		Run: func(cmd *cobra.Command, args []string) {
			fmt.Fprintf(cmd.OutOrStdout(), "wasmkube %s (Kubernetes API %s, %s, %s/%s)\n",
				version.Version, version.Kubernetes, runtime.Version(), runtime.GOOS, runtime.GOARCH)
		},
	}
}
