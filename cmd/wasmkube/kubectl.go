package main

import (
	"os"

	"github.com/spf13/cobra"
	"k8s.io/component-base/cli"
	kubectlcmd "k8s.io/kubectl/pkg/cmd"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"
)

// newKubectlCommand embeds upstream kubectl unchanged, as k3s does: every
// argument after `kubectl` is kubectl's own.
func newKubectlCommand() *cobra.Command {
	return &cobra.Command{
		Use:                "kubectl",
		Short:              "Run upstream kubectl (reads KUBECONFIG and --kubeconfig as kubectl does)",
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			os.Exit(runKubectl(args))
			return nil
		},
	}
}

func runKubectl(args []string) int {
	kubectl := kubectlcmd.NewDefaultKubectlCommand()
	kubectl.SetArgs(args)
	os.Args = append([]string{"kubectl"}, args...)
	if err := cli.RunNoErrOutput(kubectl); err != nil {
		// Print and exit exactly as upstream kubectl's main does.
		cmdutil.CheckErr(err)
	}
	return 0
}
