package node

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"time"
)

// Defaults, upstream kubelet's unless noted.
const (
	DefaultMaxPods        = 110
	DefaultKubeletPort    = 10250
	DefaultLeaseDuration  = 40 * time.Second
	DefaultStatusInterval = 10 * time.Second
	// Upstream reports an unchanged status every 5 minutes; an edge site
	// has few nodes, so a fresher heartbeat costs little.
	DefaultStatusReportInterval = time.Minute
)

// Config describes the node this agent registers and keeps alive.
type Config struct {
	// Name is the Node's name, also used as its hostname label and
	// Hostname address (like kubelet's --hostname-override). Default: the
	// machine's hostname, lowercased as upstream does.
	Name string
	// NodeIP is the InternalIP address. Default: the first non-loopback
	// address of the default route's interface.
	NodeIP net.IP
	// Labels are extra labels (e.g. wasmkube.io/wasm=true), merged into
	// the Node's labels at registration.
	Labels map[string]string
	// Wasm says the node runs WebAssembly containers: the Node gets the
	// label wasmkube.io/wasm=true, the runtime handler "wasm" in
	// status.runtimeHandlers and the engine annotation. When false the
	// label and annotation are removed from an adopted Node.
	Wasm bool
	// WasmEngineVersion is the wasm engine's annotation value, e.g.
	// "wazero v1.12.0". Default when Wasm: WazeroVersion().
	WasmEngineVersion string
	// MaxPods is the pods capacity. Default 110.
	MaxPods int
	// RuntimeVersion is nodeInfo.containerRuntimeVersion, e.g.
	// "containerd://1.6.20".
	RuntimeVersion string
	// KubeletVersion is nodeInfo.kubeletVersion, e.g. v1.37.2+wasmkube.
	KubeletVersion string
	// KubeletPort is daemonEndpoints.kubeletEndpoint.Port. Default 10250.
	KubeletPort int32
	// LeaseDuration is the Lease's leaseDurationSeconds; the Lease is
	// renewed every quarter of it. Default 40s.
	LeaseDuration time.Duration
	// StatusInterval is how often conditions are re-evaluated; the status
	// is written when it changed. Default 10s.
	StatusInterval time.Duration
	// StatusReportInterval bounds how long an unchanged status goes
	// unwritten. Default 1m.
	StatusReportInterval time.Duration
	// DataDir is the filesystem measured for ephemeral-storage capacity
	// and disk pressure. Default "/".
	DataDir string
	// Thresholds decide the pressure conditions; zero fields take
	// upstream's default hard eviction thresholds.
	Thresholds Thresholds
	// Ready, when set, is asked on every status evaluation; an error makes
	// the node NotReady with the error as the condition's message (for
	// instance when the container runtime is down).
	Ready func() error
	// Now is the clock for timestamps. Default time.Now.
	Now func() time.Time
	// Log receives what the agent cannot return (failed renewals and
	// status writes, which are retried). Default slog.Default().
	Log *slog.Logger
}

// Thresholds below which the node reports pressure.
type Thresholds struct {
	// MemoryAvailable in bytes; default 100Mi (memory.available<100Mi).
	MemoryAvailable int64
	// NodeFSAvailable as a fraction of DataDir's filesystem; default 0.10
	// (nodefs.available<10%).
	NodeFSAvailable float64
	// PIDAvailable as a fraction of the pid limit; default 0.10.
	PIDAvailable float64
}

func (c Config) withDefaults() (Config, error) {
	if c.Name == "" {
		h, err := os.Hostname()
		if err != nil {
			return c, fmt.Errorf("node name: %w", err)
		}
		c.Name = strings.ToLower(strings.TrimSpace(h))
	}
	if c.NodeIP == nil {
		ip, err := discoverNodeIP()
		if err != nil {
			return c, fmt.Errorf("node IP: %w", err)
		}
		c.NodeIP = ip
	}
	if c.Wasm && c.WasmEngineVersion == "" {
		c.WasmEngineVersion = WazeroVersion()
	}
	if c.MaxPods <= 0 {
		c.MaxPods = DefaultMaxPods
	}
	if c.KubeletPort <= 0 {
		c.KubeletPort = DefaultKubeletPort
	}
	if c.LeaseDuration <= 0 {
		c.LeaseDuration = DefaultLeaseDuration
	}
	if c.StatusInterval <= 0 {
		c.StatusInterval = DefaultStatusInterval
	}
	if c.StatusReportInterval <= 0 {
		c.StatusReportInterval = DefaultStatusReportInterval
	}
	if c.DataDir == "" {
		c.DataDir = "/"
	}
	if c.Thresholds.MemoryAvailable <= 0 {
		c.Thresholds.MemoryAvailable = 100 << 20
	}
	if c.Thresholds.NodeFSAvailable <= 0 {
		c.Thresholds.NodeFSAvailable = 0.10
	}
	if c.Thresholds.PIDAvailable <= 0 {
		c.Thresholds.PIDAvailable = 0.10
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
	c.Log = c.Log.With("node", c.Name)
	return c, nil
}
