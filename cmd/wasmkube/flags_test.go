package main

import (
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

func TestMaxPodsFlag(t *testing.T) {
	var flags agentFlags
	cmd := &cobra.Command{Use: "x"}
	flags.add(cmd)
	if err := cmd.ParseFlags(nil); err != nil {
		t.Fatal(err)
	}
	if cfg, err := flags.config(t.TempDir()); err != nil || cfg.MaxPods != 110 {
		t.Errorf("default --max-pods: MaxPods %d, err %v; want 110", cfg.MaxPods, err)
	}
	if err := cmd.ParseFlags([]string{"--max-pods", "600"}); err != nil {
		t.Fatal(err)
	}
	if cfg, err := flags.config(t.TempDir()); err != nil || cfg.MaxPods != 600 {
		t.Errorf("--max-pods 600: MaxPods %d, err %v", cfg.MaxPods, err)
	}
	if err := cmd.ParseFlags([]string{"--max-pods", "0"}); err != nil {
		t.Fatal(err)
	}
	if _, err := flags.config(t.TempDir()); err == nil || !strings.Contains(err.Error(), "--max-pods") {
		t.Errorf("--max-pods 0 accepted: %v", err)
	}
}

// TestNodeCIDRMaskSizeRefused checks that a mask shorter than the cluster
// CIDR's stops `server` and `up` before anything starts.
func TestNodeCIDRMaskSizeRefused(t *testing.T) {
	for _, newCmd := range []func() *cobra.Command{newServerCommand, newUpCommand} {
		cmd := newCmd()
		cmd.SetArgs([]string{"--data-dir", t.TempDir(), "--cluster-cidr", "10.244.4.0/22", "--node-cidr-mask-size", "21"})
		cmd.SilenceUsage, cmd.SilenceErrors = true, true
		err := cmd.Execute()
		if err == nil || !strings.Contains(err.Error(), "--node-cidr-mask-size 21") || !strings.Contains(err.Error(), "greater than or equal to 22") {
			t.Errorf("%s with a /21 node mask in a /22: %v", cmd.Name(), err)
		}
	}
}
