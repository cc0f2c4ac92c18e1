package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/containerd/containerd"
	"github.com/spf13/cobra"

	"github.com/wasmkube/wasmkube/runtime/images"
)

// imageOptions says which containerd the image commands talk to: the
// agent's private one, found under its data dir, or any other by socket.
type imageOptions struct {
	dataDir string
	address string
}

// containerdSubdir is where the agent keeps its private containerd under
// --data-dir (runtime/containerd Config.Dir).
const containerdSubdir = "containerd"

// connectTimeout bounds the dial, so a socket nobody serves fails the
// command at once instead of leaving the user waiting.
const connectTimeout = 5 * time.Second

func newImageCommand() *cobra.Command {
	opts := &imageOptions{}
	cmd := &cobra.Command{
		Use:   "image",
		Short: "Manage the node's images (import OCI and docker archives, list, pack wasm modules)",
		Long: `Manage the node's image store: the containerd namespace "wasmkube".

Give either --data-dir, the agent's data directory (its containerd listens on
DIR/containerd/containerd.sock), or --containerd-address, the socket of a
containerd the agent was pointed at.`,
	}
	f := cmd.PersistentFlags()
	f.StringVar(&opts.dataDir, "data-dir", "", "agent data directory; uses the containerd socket DIR/containerd/containerd.sock")
	f.StringVar(&opts.address, "containerd-address", "", "containerd socket to use instead of the agent's")
	cmd.AddCommand(newImageImportCommand(opts), newImageListCommand(opts), newImagePackCommand())
	return cmd
}

func newImageImportCommand(opts *imageOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "import FILE.tar...",
		Short: "Import image archives (docker save output or OCI image layouts in a tar; - reads stdin)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			client, err := opts.connect(ctx)
			if err != nil {
				return err
			}
			defer client.Close()
			for _, path := range args {
				if err := importFile(ctx, client, path, cmd.InOrStdin(), cmd.OutOrStdout(), cmd.ErrOrStderr()); err != nil {
					return err
				}
			}
			return nil
		},
	}
}

func importFile(ctx context.Context, client *containerd.Client, path string, stdin io.Reader, out, progress io.Writer) error {
	r := stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return fmt.Errorf("import: %w", err)
		}
		defer f.Close()
		r = f
	}
	fmt.Fprintf(progress, "importing %s\n", path)
	imgs, err := images.Import(ctx, client, r, progress)
	if err != nil {
		return fmt.Errorf("import %s: %w", path, err)
	}
	for _, img := range imgs {
		fmt.Fprintf(out, "imported %s %s\n", img.Name, img.Target.Digest)
	}
	return nil
}

func newImageListCommand(opts *imageOptions) *cobra.Command {
	return &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List the node's images",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			client, err := opts.connect(ctx)
			if err != nil {
				return err
			}
			defer client.Close()
			sums, err := images.Summaries(ctx, client)
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 8, 3, ' ', 0)
			fmt.Fprintln(w, "NAME\tDIGEST\tSIZE\tUNPACKED")
			for _, s := range sums {
				fmt.Fprintf(w, "%s\t%s\t%s\t%t\n", s.Name, shortDigest(s.Digest.String()), images.HumanBytes(s.Size), s.Unpacked)
			}
			return w.Flush()
		},
	}
}

// shortDigest keeps the algorithm and 12 hex digits, as docker shows image
// IDs: enough to tell images apart in a listing.
func shortDigest(d string) string {
	alg, hex, ok := strings.Cut(d, ":")
	if !ok || len(hex) <= 12 {
		return d
	}
	return alg + ":" + hex[:12]
}

// socket resolves the flags to a containerd socket path.
func (o *imageOptions) socket() (string, error) {
	switch {
	case o.dataDir != "" && o.address != "":
		return "", errors.New("give either --data-dir or --containerd-address, not both")
	case o.address != "":
		return o.address, nil
	case o.dataDir != "":
		return filepath.Join(o.dataDir, containerdSubdir, "containerd.sock"), nil
	default:
		return "", errors.New("give --data-dir (the agent's data directory) or --containerd-address")
	}
}

func (o *imageOptions) connect(ctx context.Context) (*containerd.Client, error) {
	sock, err := o.socket()
	if err != nil {
		return nil, err
	}
	hint := ""
	if o.dataDir != "" {
		hint = fmt.Sprintf(" (is the agent running with --data-dir %s?)", o.dataDir)
	}
	if _, err := os.Stat(strings.TrimPrefix(sock, "unix://")); err != nil {
		return nil, fmt.Errorf("containerd socket %s: %w%s", sock, err, hint)
	}
	client, err := containerd.New(sock, containerd.WithTimeout(connectTimeout))
	if err != nil {
		return nil, fmt.Errorf("connect to containerd at %s: %w%s", sock, err, hint)
	}
	// A socket left by a dead containerd accepts no calls; say so here
	// rather than through the first real request's error.
	vctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	if _, err := client.Version(vctx); err != nil {
		client.Close()
		return nil, fmt.Errorf("containerd at %s does not answer: %w%s", sock, err, hint)
	}
	return client, nil
}
