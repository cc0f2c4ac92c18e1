// Command wasmkube is the whole cluster in one binary: `server` (control
// plane), `agent` (node), `up` (both, the all-in-one edge node), `kubectl`
// (upstream kubectl, embedded), `image` and `version`.
package main

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/wasmkube/wasmkube/internal/memtrim"
)

func main() {
	// Invoked through a link named kubectl, behave exactly as kubectl.
	if filepath.Base(os.Args[0]) == "kubectl" {
		os.Exit(runKubectl(os.Args[1:]))
	}
	if err := newRootCommand().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "Error:", err)
		os.Exit(1)
	}
}

func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "wasmkube",
		Short:         "A Kubernetes-model cluster for edge nodes, running OCI and WebAssembly containers",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(
		newServerCommand(),
		newUpCommand(),
		newAgentCommand(),
		newKubectlCommand(),
		newImageCommand(),
		newVersionCommand(),
	)
	return root
}

// trimStartupMemory hands back the executable pages that starting up
// touched; a long-running node process should hold only what it uses.
func trimStartupMemory() {
	if _, err := memtrim.Executable(); err != nil {
		slog.Debug("trimming startup memory", "err", err)
	}
}
