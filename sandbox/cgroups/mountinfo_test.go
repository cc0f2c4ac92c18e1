package cgroups

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseMountinfo(t *testing.T) {
	tests := []struct {
		name, info string
		want       []Hierarchy
	}{{
		name: "v1 only",
		info: `22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
25 22 0:22 / /sys/fs/cgroup ro,nosuid shared:4 - tmpfs tmpfs ro,mode=755
24 22 0:27 /docker/0123 /var/lib/docker/memory rw,relatime - cgroup cgroup rw,memory
26 25 0:23 / /sys/fs/cgroup/systemd rw,nosuid shared:5 - cgroup cgroup rw,xattr,release_agent=/lib/systemd/systemd-cgroups-agent,name=systemd
29 25 0:26 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid shared:9 - cgroup cgroup rw,cpu,cpuacct
30 25 0:27 / /sys/fs/cgroup/memory rw,nosuid shared:10 - cgroup cgroup rw,memory
31 25 0:28 / /sys/fs/cgroup/pids rw,nosuid shared:11 - cgroup cgroup rw,pids
32 25 0:29 / /sys/fs/cgroup/cpuset rw,nosuid shared:12 - cgroup cgroup rw,cpuset,clone_children
90 22 0:27 / /mnt/memory\040again rw,relatime shared:10 - cgroup cgroup rw,memory
`,
		want: []Hierarchy{
			{Mountpoint: "/sys/fs/cgroup/memory", Controllers: []string{"memory"}},
			{Mountpoint: "/sys/fs/cgroup/systemd", Controllers: []string{"name=systemd"}},
			{Mountpoint: "/sys/fs/cgroup/cpu,cpuacct", Controllers: []string{"cpu", "cpuacct"}},
			{Mountpoint: "/sys/fs/cgroup/pids", Controllers: []string{"pids"}},
			{Mountpoint: "/sys/fs/cgroup/cpuset", Controllers: []string{"cpuset"}},
		},
	}, {
		name: "hybrid",
		info: `31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime shared:9 - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/uni\040fied rw,relatime shared:7 master:1 - cgroup2 cgroup2 rw
`,
		want: []Hierarchy{
			{Mountpoint: "/sys/fs/cgroup/memory", Controllers: []string{"memory"}},
			{Mountpoint: "/sys/fs/cgroup/pids", Controllers: []string{"pids"}},
			{Mountpoint: "/sys/fs/cgroup/systemd", Controllers: []string{"name=systemd"}},
			{Mountpoint: "/sys/fs/cgroup/uni fied", Unified: true},
		},
	}, {
		name: "pure cgroup2",
		info: `22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
27 22 0:23 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
58 27 0:23 / /run/other/cgroup rw,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate
`,
		want: []Hierarchy{{Mountpoint: "/sys/fs/cgroup", Unified: true}},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseMountinfo(strings.NewReader(tt.info))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("hierarchies:\n got %+v\nwant %+v", got, tt.want)
			}
		})
	}
	if hs, err := parseMountinfo(strings.NewReader("22 1 8:1 / / rw - ext4 /dev/sda1 rw\n")); err == nil {
		t.Fatalf("found hierarchies %+v in a mountinfo without cgroup mounts", hs)
	}
}
