// Command wasmkube-sandbox is a pod's sandbox process: it runs the pod's
// WebAssembly containers and serves the node agent on a Unix socket (see
// package sandbox/wasmhost). The agent starts it in the pod's network
// namespace and cgroup; it outlives the agent. "compile" fills the node's
// compilation cache for a new image in a short-lived process.
//
//	wasmkube-sandbox serve --socket S --cache-dir D [--preload-module M --preload-digest D]
//	wasmkube-sandbox compile --module M --digest D --cache-dir C
//
// It links neither containerd nor Kubernetes' libraries, so that it stays
// small in memory.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/wasmkube/wasmkube/sandbox/wasmhost/server"
)

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "serve":
		err = serve(log, os.Args[2:])
	case "compile":
		err = compile(os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		log.Error(os.Args[1]+" failed", "err", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: wasmkube-sandbox serve --socket S --cache-dir D [--preload-module M --preload-digest D]\n       wasmkube-sandbox compile --module M --digest D --cache-dir C")
	os.Exit(2)
}

func serve(log *slog.Logger, args []string) error {
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	socket := fs.String("socket", "", "Unix socket the agent dials")
	cacheDir := fs.String("cache-dir", "", "the node's compilation cache directory")
	grace := fs.Duration("stop-grace", 10*time.Second, "grace of each running guest on SIGTERM")
	preloadModule := fs.String("preload-module", "", "module file to load while no container exists (a sandbox started ahead of its pod)")
	preloadDigest := fs.String("preload-digest", "", "image digest of --preload-module")
	_ = fs.Parse(args)
	if *socket == "" {
		return fmt.Errorf("--socket is required")
	}
	cfg := server.Config{Socket: *socket, CacheDir: *cacheDir, Log: log, StopGrace: *grace}
	if *preloadModule != "" {
		if *preloadDigest == "" {
			return fmt.Errorf("--preload-module needs --preload-digest")
		}
		cfg.Preload = &server.Preload{Module: *preloadModule, Digest: *preloadDigest}
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	return server.Serve(ctx, cfg)
}

func compile(args []string) error {
	fs := flag.NewFlagSet("compile", flag.ExitOnError)
	module := fs.String("module", "", "module file")
	digest := fs.String("digest", "", "image digest, the cache key")
	cacheDir := fs.String("cache-dir", "", "the node's compilation cache directory")
	_ = fs.Parse(args)
	if *module == "" || *digest == "" || *cacheDir == "" {
		return fmt.Errorf("--module, --digest and --cache-dir are required")
	}
	return server.Compile(context.Background(), *module, *digest, *cacheDir)
}
