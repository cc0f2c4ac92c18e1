package main

import "github.com/spf13/cobra"

func newServerCommand() *cobra.Command {
	return &cobra.Command{Use: "server", Short: "Run the control plane"}
}
