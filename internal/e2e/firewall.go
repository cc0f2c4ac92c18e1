package e2e

import (
	"context"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// firewallDumps are the commands whose output makes up the machine's packet
// filter rules: both iptables front ends (which show the nft-backed tables
// as iptables rules) and nftables itself.
var firewallDumps = [][]string{
	{"iptables-save"},
	{"ip6tables-save"},
	{"nft", "list", "ruleset"},
}

var (
	// iptablesCounters are the [packets:bytes] of iptables-save's chain
	// lines; nftCounters are nft's counter statements.
	iptablesCounters = regexp.MustCompile(`\[\d+:\d+\]`)
	nftCounters      = regexp.MustCompile(`packets \d+ bytes \d+`)
)

// FirewallRules returns the machine's iptables and nftables rules, without
// what changes on its own (comment lines, which carry a date, and packet
// and byte counters), so that two snapshots are equal unless a rule, chain
// or table was added, changed or removed. Each dump starts with a line
// naming its command. A command that fails fails the test: `make deps`
// installs iptables and nftables.
func FirewallRules(t testing.TB) string {
	t.Helper()
	var b strings.Builder
	for _, argv := range firewallDumps {
		ctx, cancel := context.WithTimeout(context.Background(), CommandTimeout)
		out, err := exec.CommandContext(ctx, argv[0], argv[1:]...).CombinedOutput()
		cancel()
		if err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(argv, " "), err, out)
		}
		b.WriteString("== " + strings.Join(argv, " ") + "\n")
		b.WriteString(stableRules(string(out)))
	}
	return b.String()
}

// stableRules drops blank and comment lines from a rules dump and zeroes
// its counters.
func stableRules(dump string) string {
	var b strings.Builder
	for _, line := range strings.Split(dump, "\n") {
		if trimmed := strings.TrimSpace(line); trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		line = iptablesCounters.ReplaceAllString(line, "[0:0]")
		line = nftCounters.ReplaceAllString(line, "packets 0 bytes 0")
		b.WriteString(line + "\n")
	}
	return b.String()
}
