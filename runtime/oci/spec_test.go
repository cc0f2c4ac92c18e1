package oci

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestProcessArgs(t *testing.T) {
	img := ocispec.ImageConfig{Entrypoint: []string{"/ep"}, Cmd: []string{"cmd"}}
	for _, c := range []struct {
		command, args, want []string
	}{
		{nil, nil, []string{"/ep", "cmd"}},
		{[]string{"/c"}, nil, []string{"/c"}},
		{nil, []string{"a"}, []string{"/ep", "a"}},
		{[]string{"/c"}, []string{"a"}, []string{"/c", "a"}},
	} {
		got, err := processArgs(img, c.command, c.args)
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("processArgs(%v, %v) = %v, %v; want %v", c.command, c.args, got, err, c.want)
		}
	}
	if _, err := processArgs(ocispec.ImageConfig{}, nil, nil); err == nil {
		t.Error("no entrypoint, cmd, command or args: want an error")
	}
}

func TestCapNamesAndMounts(t *testing.T) {
	if got := capNames([]string{"net_admin", "CAP_SYS_TIME", "ALL"}); !slices.Equal(got, []string{"CAP_NET_ADMIN", "CAP_SYS_TIME", "ALL"}) {
		t.Errorf("capNames = %v", got)
	}
	in := []specs.Mount{
		{Destination: "/data", Source: "/v/data", Options: []string{"ro"}},
		{Destination: "/b", Source: "/v/b", Type: "bind", Options: []string{"bind"}},
		{Destination: "/t", Type: "tmpfs", Source: "tmpfs"},
	}
	out := bindMounts(in)
	if out[0].Type != "bind" || !slices.Equal(out[0].Options, []string{"ro", "rbind"}) {
		t.Errorf("volume mount = %+v", out[0])
	}
	if !slices.Equal(out[1].Options, []string{"bind"}) || len(out[2].Options) != 0 {
		t.Errorf("mounts = %+v", out)
	}
	if !slices.Equal(in[0].Options, []string{"ro"}) {
		t.Errorf("bindMounts changed its input: %+v", in[0])
	}
}

func TestLimitsWithoutControllers(t *testing.T) {
	s := Spec{MemoryLimit: 1 << 20, CPUQuota: 1000, PidsLimit: 10}
	opts, warnings := limitOpts(s, controllers{names: map[string]bool{"cpu": true}})
	if len(opts) != 1 || len(warnings) != 2 {
		t.Fatalf("opts %d, warnings %q", len(opts), warnings)
	}
	if !strings.Contains(warnings[0], "memory") || !strings.Contains(warnings[1], "pids") {
		t.Fatalf("warnings %q", warnings)
	}
}

func TestDetectControllers(t *testing.T) {
	dir := t.TempDir()
	mem := filepath.Join(dir, "memory")
	unified := filepath.Join(dir, "unified")
	for _, d := range []string{mem, unified} {
		os.MkdirAll(d, 0o755)
	}
	os.WriteFile(filepath.Join(unified, "cgroup.controllers"), []byte("cpu memory pids\n"), 0o644)
	hybrid := strings.Join([]string{
		"30 25 0:26 / " + mem + " rw,nosuid - cgroup cgroup rw,memory",
		"31 25 0:27 / /x/cpu rw shared:9 - cgroup cgroup rw,cpu,cpuacct",
		"32 25 0:28 / " + unified + " rw - cgroup2 cgroup2 rw",
	}, "\n") + "\n"
	pure := "40 1 0:30 / " + unified + " rw - cgroup2 cgroup2 rw\n"

	write := func(s string) string {
		p := filepath.Join(dir, "mountinfo")
		os.WriteFile(p, []byte(s), 0o644)
		return p
	}
	c, err := detectControllers(write(hybrid))
	if err != nil {
		t.Fatal(err)
	}
	if !c.has("memory") || !c.has("cpu") || c.has("pids") || c.v2 || c.memoryRoot != mem || c.swap {
		t.Fatalf("hybrid: %+v", c)
	}
	os.WriteFile(filepath.Join(mem, "memory.oom_control"), []byte("oom_kill_disable 0\nunder_oom 0\noom_kill 2\n"), 0o644)
	if n := c.oomKills("/"); n != 2 {
		t.Fatalf("oomKills = %d", n)
	}
	if n := c.oomKills("/missing"); n != 0 {
		t.Fatalf("oomKills of a missing cgroup = %d", n)
	}

	c, err = detectControllers(write(pure))
	if err != nil {
		t.Fatal(err)
	}
	if !c.has("pids") || !c.v2 || c.memoryRoot != unified || !c.swap {
		t.Fatalf("unified: %+v", c)
	}
}
