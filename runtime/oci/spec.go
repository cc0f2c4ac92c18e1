package oci

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/containerd/containerd/containers"
	"github.com/containerd/containerd/oci"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/wasmkube/wasmkube/runtime/images"
)

// Spec describes one OCI container of a pod.
type Spec struct {
	ID    string // unique container id, e.g. <podUID>-<container name>
	Image string // an image already in the store (name as stored, or a docker-style short name)

	// ShimGroup puts the containers that share it behind one containerd
	// shim (runc v2's grouping annotation): one shim process per pod
	// instead of one per container. "" gives the container its own.
	ShimGroup string

	// Labels are kept on the containerd container and returned by
	// Containers, so that an agent coming back up knows which pod and
	// container each one was made for. Keys under io.wasmkube.* are this
	// package's own and are refused.
	Labels map[string]string

	// Command replaces the image's ENTRYPOINT and Args its CMD, with the
	// Kubernetes rules for when only one of them is set.
	Command, Args []string
	Env           []string // KEY=value, overriding the image's variables of the same name
	WorkingDir    string   // "" keeps the image's

	// NetnsPath is the pod sandbox's pinned network namespace; "" means the
	// host network.
	NetnsPath string
	Mounts    []specs.Mount // bind mounts; "ro" in Options for a read-only volume
	Hostname  string

	// LogPath receives stdout and stderr in the CRI log format. "" means
	// <log dir>/<ID>.log.
	LogPath string

	// Stdin starts the process with a stdin that the Runtime holds open
	// and that attached clients write into; StdinOnce closes it once the
	// first client that sent stdin has gone (without TTY, as the CRI
	// plugin does). TTY runs the process on a terminal: its output is one
	// stream, logged as stdout.
	Stdin, StdinOnce, TTY bool

	// Resource limits; zero means unset. A limit whose cgroup controller the
	// machine lacks is left out and reported in State.Warnings rather than
	// failing the container.
	MemoryLimit int64 // bytes
	CPUQuota    int64 // microseconds per CPUPeriod
	CPUPeriod   uint64
	CPUShares   uint64
	PidsLimit   int64

	// CgroupParent is the cgroup the container's own cgroup is made
	// under, as <CgroupParent>/<ID> in every hierarchy runc uses; "" means
	// the Runtime's default (/wasmkube unless WithCgroupParent says
	// otherwise).
	CgroupParent string

	User           *specs.User // nil keeps the image's user
	ReadOnlyRootfs bool
	Privileged     bool
	// NoNewPrivileges is allowPrivilegeEscalation: false.
	NoNewPrivileges bool
	CapAdd          []string // "NET_ADMIN" or "CAP_NET_ADMIN"; "ALL" in CapDrop drops every capability
	CapDrop         []string

	// Ports are the container's declared ports. runc has no use for them;
	// a wasm container gets each as a preopened socket.
	Ports []Port
	// RuntimeClass is the pod's runtimeClassName; "wasm" asks for the
	// wasm runtime whatever the image.
	RuntimeClass string
}

// Port is a containerPort: a port number and "TCP", "UDP" or "SCTP".
type Port struct {
	Port     int32
	Protocol string
}

func (s Spec) validate() error {
	if s.ID == "" {
		return errors.New("container id is empty")
	}
	if strings.ContainsAny(s.ID, "/\x00") || s.ID == "." || s.ID == ".." {
		return fmt.Errorf("container id %q is not usable as a file name", s.ID)
	}
	if s.Image == "" {
		return errors.New("image is empty")
	}
	for k := range s.Labels {
		if strings.HasPrefix(k, ownLabelPrefix) {
			return fmt.Errorf("label %q uses the reserved prefix %s", k, ownLabelPrefix)
		}
	}
	if s.CgroupParent != "" && !strings.HasPrefix(s.CgroupParent, "/") {
		return fmt.Errorf("cgroup parent %q is not absolute", s.CgroupParent)
	}
	if s.MemoryLimit < 0 || s.CPUQuota < 0 || s.PidsLimit < 0 {
		return errors.New("resource limits must not be negative")
	}
	return nil
}

// processArgs applies the Kubernetes command and args rules, shared with
// the image store's wasm detection so both agree on a container's argv.
func processArgs(img ocispec.ImageConfig, command, args []string) ([]string, error) {
	return images.Argv(img, command, args)
}

// capName accepts Kubernetes' bare names as well as the kernel's.
func capName(c string) string {
	c = strings.ToUpper(strings.TrimSpace(c))
	if c == "ALL" || strings.HasPrefix(c, "CAP_") {
		return c
	}
	return "CAP_" + c
}

func capNames(in []string) []string {
	out := make([]string, 0, len(in))
	for _, c := range in {
		out = append(out, capName(c))
	}
	return out
}

func hasAll(caps []string) bool {
	for _, c := range caps {
		if c == "ALL" {
			return true
		}
	}
	return false
}

// capabilityOpts orders drop before add, so "drop ALL, add NET_BIND_SERVICE"
// leaves exactly that one, as Kubernetes users write it.
func capabilityOpts(s Spec) []oci.SpecOpts {
	var opts []oci.SpecOpts
	drop, add := capNames(s.CapDrop), capNames(s.CapAdd)
	if hasAll(drop) {
		opts = append(opts, oci.WithCapabilities(nil))
	} else if len(drop) > 0 {
		opts = append(opts, oci.WithDroppedCapabilities(drop))
	}
	if hasAll(add) {
		opts = append(opts, oci.WithAllCurrentCapabilities)
	} else if len(add) > 0 {
		opts = append(opts, oci.WithAddedCapabilities(add))
	}
	return opts
}

// bindMounts fills in what a bare volume mount leaves out: the bind type,
// and rbind so that mounts below the volume's source come along.
func bindMounts(in []specs.Mount) []specs.Mount {
	out := make([]specs.Mount, 0, len(in))
	for _, m := range in {
		m.Options = append([]string(nil), m.Options...)
		if m.Type == "" {
			m.Type = "bind"
		}
		if m.Type == "bind" {
			bind := false
			for _, o := range m.Options {
				if o == "bind" || o == "rbind" {
					bind = true
				}
			}
			if !bind {
				m.Options = append(m.Options, "rbind")
			}
		}
		out = append(out, m)
	}
	return out
}

// withUser replaces the image's user wholesale: Kubernetes' runAsUser and
// runAsGroup are numeric, and the caller has resolved them already.
func withUser(u specs.User) oci.SpecOpts {
	return func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
		if s.Process == nil {
			s.Process = &specs.Process{}
		}
		s.Process.User = u
		return nil
	}
}

// limitOpts turns the spec's limits into spec options, leaving out those
// the machine's cgroups cannot enforce; each left-out limit becomes a
// warning instead of a failed container, because a workload that runs
// unconfined on a small node is more useful than one that never starts.
func limitOpts(s Spec, ctl controllers) (opts []oci.SpecOpts, warnings []string) {
	skip := func(what, controller string) {
		warnings = append(warnings, fmt.Sprintf("%s not applied: cgroup controller %q is not available", what, controller))
	}
	if s.MemoryLimit > 0 {
		if ctl.has("memory") {
			opts = append(opts, oci.WithMemoryLimit(uint64(s.MemoryLimit)))
			// Without a swap limit equal to the memory limit, cgroup v1
			// lets the container page out past its limit instead of
			// being OOM-killed, which is not what a memory limit means in
			// Kubernetes.
			if ctl.swap {
				opts = append(opts, oci.WithMemorySwap(s.MemoryLimit))
			}
		} else {
			skip("memory limit", "memory")
		}
	}
	if s.CPUQuota > 0 || s.CPUShares > 0 {
		if ctl.has("cpu") {
			if s.CPUQuota > 0 {
				period := s.CPUPeriod
				if period == 0 {
					period = 100000
				}
				opts = append(opts, oci.WithCPUCFS(s.CPUQuota, period))
			}
			if s.CPUShares > 0 {
				opts = append(opts, oci.WithCPUShares(s.CPUShares))
			}
		} else {
			skip("cpu limits", "cpu")
		}
	}
	if s.PidsLimit > 0 {
		if ctl.has("pids") {
			opts = append(opts, oci.WithPidsLimit(s.PidsLimit))
		} else {
			skip("pids limit", "pids")
		}
	}
	return opts, warnings
}
