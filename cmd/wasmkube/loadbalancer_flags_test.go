package main

import (
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// TestLoadBalancerIPRangeRefused checks that a malformed pool stops
// `server` and `up` before anything starts.
func TestLoadBalancerIPRangeRefused(t *testing.T) {
	for _, newCmd := range []func() *cobra.Command{newServerCommand, newUpCommand} {
		cmd := newCmd()
		cmd.SetArgs([]string{"--data-dir", t.TempDir(), "--loadbalancer-ip-range", "192.0.2.20-192.0.2.10"})
		cmd.SilenceUsage, cmd.SilenceErrors = true, true
		err := cmd.Execute()
		if err == nil || !strings.Contains(err.Error(), "--loadbalancer-ip-range") || !strings.Contains(err.Error(), "end before start") {
			t.Errorf("%s with a reversed range: %v", cmd.Name(), err)
		}
	}
}
