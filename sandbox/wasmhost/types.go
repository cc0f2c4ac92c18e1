package wasmhost

import (
	"errors"
	"time"
)

// CgroupLeaf is the cgroup, below the pod's, that holds the pod's sandbox
// process. Its presence tells the pod worker that the pod runs wasm
// containers, whose memory limits cap their guests' linear memory rather
// than the pod cgroup: the process holds compiled code no one container
// can be charged for.
const CgroupLeaf = "wasm-sandbox"

// ErrNotFound is returned (wrapped) for a container id the sandbox does not
// have.
var ErrNotFound = errors.New("no such wasm container")

// ContainerSpec is one wasm container of the pod, as the agent creates it.
type ContainerSpec struct {
	ID     string            `json:"id"`
	Labels map[string]string `json:"labels,omitempty"`

	// Module is the host path of the module file, extracted from the
	// image; Digest is the image digest, the key of the compilation cache.
	Module string `json:"module"`
	Digest string `json:"digest"`

	// Argv is the container's command followed by its args, argv[0]
	// included; Env holds KEY=value entries.
	Argv []string `json:"argv"`
	Env  []string `json:"env,omitempty"`

	// Preopens are the volume mounts that are directories.
	Preopens []Preopen `json:"preopens,omitempty"`
	// Ports become the guest's preopened sockets, fd 3 upwards in this
	// order: a TCP listener, or a bound UDP socket, on the port in the
	// pod's network namespace.
	Ports []Port `json:"ports,omitempty"`

	// ResolvConf is the pod's resolv.conf on the host: the nameservers,
	// search list and ndots of the guests' sock_getaddrinfo. "" resolves
	// as the sandbox process does.
	ResolvConf string `json:"resolvConf,omitempty"`
	// Hosts is the pod's /etc/hosts on the host, answered before DNS.
	Hosts string `json:"hosts,omitempty"`

	// MemoryLimit caps the guest's linear memory in bytes; 0 is none.
	MemoryLimit int64 `json:"memoryLimit,omitempty"`

	// LogPath receives stdout and stderr in the CRI log format, rotated at
	// LogMaxSize keeping LogMaxFiles files (0 never rotates).
	LogPath     string `json:"logPath"`
	LogMaxSize  int64  `json:"logMaxSize,omitempty"`
	LogMaxFiles int    `json:"logMaxFiles,omitempty"`
}

// Preopen is a host directory the guest sees at GuestPath.
type Preopen struct {
	HostPath  string `json:"hostPath"`
	GuestPath string `json:"guestPath"`
	ReadOnly  bool   `json:"readOnly,omitempty"`
}

// Port is a containerPort. Protocol is "TCP" (the default) or "UDP".
type Port struct {
	Port     int32  `json:"port"`
	Protocol string `json:"protocol,omitempty"`
}

// Status is a container's life stage.
type Status string

const (
	Created Status = "created"
	Running Status = "running"
	Exited  Status = "exited"
)

// State is what the sandbox knows of one container.
type State struct {
	ID     string            `json:"id"`
	Labels map[string]string `json:"labels,omitempty"`
	Status Status            `json:"status"`
	// Pid is the sandbox process's: the guests live in it.
	Pid int `json:"pid"`
	// ExitCode is the guest's exit code once Exited; 134 for a trap and
	// 137 for OOMKilled or a kill, as runtime/wasm reports them.
	ExitCode int `json:"exitCode"`
	// Reason is Kubernetes' terminated reason: Completed, Error or
	// OOMKilled; Message explains a trap, an OOM or a kill.
	Reason     string    `json:"reason,omitempty"`
	Message    string    `json:"message,omitempty"`
	StartedAt  time.Time `json:"startedAt,omitzero"`
	FinishedAt time.Time `json:"finishedAt,omitzero"`
	LogPath    string    `json:"logPath"`
	// Restarts counts the Starts of an exited container in place.
	Restarts int `json:"restarts,omitempty"`
}

// OOMKilled reports whether the guest ended for want of memory.
func (s State) OOMKilled() bool { return s.Reason == "OOMKilled" }
