package wasmpod

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/wasmkube/wasmkube/runtime/oci"
	"github.com/wasmkube/wasmkube/sandbox/wasmhost"
)

func TestHostSpec(t *testing.T) {
	dir := t.TempDir()
	data, config := filepath.Join(dir, "data"), filepath.Join(dir, "config")
	hosts, resolv := filepath.Join(dir, "hosts"), filepath.Join(dir, "resolv.conf")
	for _, d := range []string{data, config} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{hosts, resolv} {
		if err := os.WriteFile(f, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s := oci.Spec{
		ID: "uid-0-app", Labels: map[string]string{"k": "v"}, Env: []string{"HOSTNAME=web", "PATH=/mine"},
		LogPath: "/logs/0.log", MemoryLimit: 64 << 20,
		Ports: []oci.Port{{Port: 8080, Protocol: "TCP"}, {Port: 9090, Protocol: "TCP"}},
		Mounts: []specs.Mount{
			{Destination: "/data", Source: data},
			{Destination: "/config", Source: config, Options: []string{"ro"}},
			{Destination: "/etc/hosts", Source: hosts},
			{Destination: "/etc/resolv.conf", Source: resolv, Options: []string{"ro"}},
			{Destination: "/gone", Source: filepath.Join(dir, "missing")},
		},
	}
	m := Module{Path: "/m.wasm", ImageDigest: "sha256:abc", Argv: []string{"/app.wasm", "serve"}, Env: []string{"PATH=/image", "LANG=C"}}
	got := hostSpec(s, m, oci.LogRotation{MaxSize: 10, MaxFiles: 3})
	want := wasmhost.ContainerSpec{
		ID: "uid-0-app", Labels: map[string]string{"k": "v"}, Module: "/m.wasm", Digest: "sha256:abc",
		Argv: []string{"/app.wasm", "serve"},
		// The container's variables win over the image's.
		Env: []string{"LANG=C", "HOSTNAME=web", "PATH=/mine"},
		// Only directories are preopened; the files still name the pod's
		// resolver configuration.
		Preopens: []wasmhost.Preopen{
			{HostPath: data, GuestPath: "/data"},
			{HostPath: config, GuestPath: "/config", ReadOnly: true},
		},
		Ports:      []wasmhost.Port{{Port: 8080, Protocol: "TCP"}, {Port: 9090, Protocol: "TCP"}},
		ResolvConf: resolv, Hosts: hosts, MemoryLimit: 64 << 20,
		LogPath: "/logs/0.log", LogMaxSize: 10, LogMaxFiles: 3,
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("hostSpec:\n got %+v\nwant %+v", got, want)
	}
}

// fakeOCI records which calls reach the OCI side of a Mux.
type fakeOCI struct {
	OCIRuntime
	created []string
}

func (f *fakeOCI) Create(_ context.Context, s oci.Spec) error {
	f.created = append(f.created, s.ID)
	return nil
}

func (f *fakeOCI) Containers(context.Context) ([]oci.Container, error) {
	return []oci.Container{{ID: "oci-1"}}, nil
}

// The pod worker finds re-attaching by an interface check: a Mux must
// pass it on, or adopted OCI containers lose their logs and attach.
var _ interface {
	Attach(ctx context.Context, id string) error
} = Mux{}

func TestMuxWithoutWasm(t *testing.T) {
	ctx := context.Background()
	f := &fakeOCI{}
	why := errors.New("no sandbox binary")
	m := Mux{OCI: f, WasmErr: why}
	if err := m.Create(ctx, oci.Spec{ID: "a", Image: "busybox"}); err != nil {
		t.Fatal(err)
	}
	err := m.Create(ctx, oci.Spec{ID: "b", Image: "app", RuntimeClass: RuntimeClass})
	if !errors.Is(err, why) {
		t.Fatalf("runtimeClassName wasm on a node without wasm: %v, want the reason", err)
	}
	if !reflect.DeepEqual(f.created, []string{"a"}) {
		t.Fatalf("OCI runtime created %v", f.created)
	}
	cs, err := m.Containers(ctx)
	if err != nil || len(cs) != 1 || cs[0].ID != "oci-1" {
		t.Fatalf("Containers = %v, %v", cs, err)
	}
}

func TestMergeEnv(t *testing.T) {
	got := mergeEnv([]string{"A=1", "B=2", "C"}, []string{"B=3", "D=4"})
	if want := []string{"A=1", "C", "B=3", "D=4"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("mergeEnv = %q, want %q", got, want)
	}
}
