package wasmpod

import (
	"context"
	"fmt"
	"time"

	"github.com/wasmkube/wasmkube/runtime/agent/pods"
	"github.com/wasmkube/wasmkube/runtime/oci"
)

// OCIRuntime is what Mux needs of runtime/oci: the pod worker's runtime,
// attach for the agent's server, and the re-attach of an adopted
// container's streams.
type OCIRuntime interface {
	pods.Runtime
	AttachStreams(ctx context.Context, id string, o oci.AttachOptions) error
	Attach(ctx context.Context, id string) error
}

// Mux is the node's one container runtime: wasm containers go to Wasm,
// the others to OCI. A nil Wasm is a node that cannot run wasm; WasmErr
// says why.
type Mux struct {
	OCI     OCIRuntime
	Wasm    *Runtime
	WasmErr error
}

func (m Mux) route(id string) OCIRuntime {
	if m.Wasm != nil && m.Wasm.Has(id) {
		return m.Wasm
	}
	return m.OCI
}

// Create makes s with the runtime its image or runtime class asks for.
func (m Mux) Create(ctx context.Context, s oci.Spec) error {
	if m.Wasm == nil {
		if s.RuntimeClass == RuntimeClass {
			return fmt.Errorf("runtimeClassName %q: this node cannot run wasm containers: %w", RuntimeClass, m.WasmErr)
		}
		return m.OCI.Create(ctx, s)
	}
	wasm, err := m.Wasm.Claims(ctx, s)
	if err != nil {
		return err
	}
	if wasm {
		return m.Wasm.Create(ctx, s)
	}
	return m.OCI.Create(ctx, s)
}

func (m Mux) Start(ctx context.Context, id string) error { return m.route(id).Start(ctx, id) }

func (m Mux) Status(ctx context.Context, id string) (oci.State, error) {
	return m.route(id).Status(ctx, id)
}

func (m Mux) Wait(ctx context.Context, id string) (<-chan oci.ExitStatus, error) {
	return m.route(id).Wait(ctx, id)
}

func (m Mux) Stop(ctx context.Context, id string, grace time.Duration) error {
	return m.route(id).Stop(ctx, id, grace)
}

func (m Mux) Remove(ctx context.Context, id string) error { return m.route(id).Remove(ctx, id) }

// Containers lists both runtimes' containers.
func (m Mux) Containers(ctx context.Context) ([]oci.Container, error) {
	cs, err := m.OCI.Containers(ctx)
	if err != nil {
		return nil, err
	}
	if m.Wasm == nil {
		return cs, nil
	}
	ws, err := m.Wasm.Containers(ctx)
	if err != nil {
		return nil, fmt.Errorf("wasm containers: %w", err)
	}
	return append(cs, ws...), nil
}

func (m Mux) Exec(ctx context.Context, id string, o oci.ExecOptions) (int, error) {
	return m.route(id).Exec(ctx, id, o)
}

func (m Mux) AttachStreams(ctx context.Context, id string, o oci.AttachOptions) error {
	return m.route(id).AttachStreams(ctx, id, o)
}

// Attach takes over the streams of a container an earlier agent started.
func (m Mux) Attach(ctx context.Context, id string) error { return m.route(id).Attach(ctx, id) }
