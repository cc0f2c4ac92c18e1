package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/wasmkube/wasmkube/ebpf/lb"
	"github.com/wasmkube/wasmkube/runtime/agent"
)

// newAgentServicesCommand prints what the node's Service datapath holds,
// read from its pinned maps: what the sockets and packets of this node are
// translated by, whatever the API server says.
func newAgentServicesCommand() *cobra.Command {
	var nodeName, bpfDir string
	cmd := &cobra.Command{
		Use:   "services",
		Short: "Print the Service frontends and backends programmed in this node's eBPF maps",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if nodeName == "" {
				h, err := os.Hostname()
				if err != nil {
					return fmt.Errorf("node name: %w", err)
				}
				nodeName = h
			}
			dir := filepath.Join(bpfDir, nodeName)
			entries, err := lb.ListPinned(dir)
			if errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("no Service datapath pinned at %s: has an agent of node %q run on this machine?", dir, nodeName)
			}
			if err != nil {
				return err
			}
			return printServices(cmd.OutOrStdout(), entries)
		},
	}
	f := cmd.Flags()
	f.StringVar(&nodeName, "node-name", "", "the node whose datapath to read (default: the hostname)")
	f.StringVar(&bpfDir, "bpf-dir", agent.DefaultBPFDir, "where agents pin their maps, a directory per node")
	return cmd
}

// printServices writes one row per frontend.
func printServices(w io.Writer, entries []lb.Entry) error {
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	fmt.Fprintln(tw, "FRONTEND\tPROTO\tSCOPE\tFOR\tAFFINITY\tBACKENDS")
	for _, e := range entries {
		affinity := "-"
		if e.AffinityTimeout > 0 {
			affinity = e.AffinityTimeout.String()
		}
		backends := make([]string, len(e.Backends))
		for i, b := range e.Backends {
			backends[i] = fmt.Sprintf("%s:%d", b.Addr, b.Port)
		}
		list := strings.Join(backends, ",")
		if list == "" {
			list = "<none>"
		}
		fmt.Fprintf(tw, "%s:%d\t%s\t%s\t%s\t%s\t%s\n", e.Addr, e.Port, e.Proto, e.Scope, translatedFor(e), affinity, list)
	}
	return tw.Flush()
}

// translatedFor says whose connections a frontend translates: every
// socket of the node, only the host's network namespace (the node's own
// addresses, such as 127.0.0.1:nodePort), the host's and the node's pods
// (a NodePort on a node IP), or packets from outside.
func translatedFor(e lb.Entry) string {
	switch {
	case e.Scope == lb.ScopeExternal:
		return "outside"
	case e.HostOnly:
		return "host"
	case e.NodeAddr:
		return "host,pods"
	}
	return "all"
}
