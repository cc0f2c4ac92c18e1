package node

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestMeminfoAndTasks(t *testing.T) {
	dir := t.TempDir()
	mi := writeFile(t, dir, "meminfo", "MemTotal:        2048000 kB\nMemFree:          100 kB\nMemAvailable:    1024000 kB\nHugePages_Total:       0\n")
	m, err := meminfo(mi)
	if err != nil {
		t.Fatal(err)
	}
	if m["MemTotal"] != 2048000*1024 || m["MemAvailable"] != 1024000*1024 || m["HugePages_Total"] != 0 {
		t.Errorf("meminfo = %v", m)
	}
	la := writeFile(t, dir, "loadavg", "0.94 1.51 1.98 1/104 1187\n")
	if n, err := tasks(la); err != nil || n != 104 {
		t.Errorf("tasks = %d, %v; want 104", n, err)
	}
	bad := writeFile(t, dir, "bad", "0.94\n")
	if _, err := tasks(bad); err == nil {
		t.Error("tasks accepted a malformed loadavg")
	}
	if _, err := meminfo(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing meminfo: %v, want a wrapped not-exist error", err)
	}
}

func TestOSImageAndUUID(t *testing.T) {
	dir := t.TempDir()
	if got := osImage(writeFile(t, dir, "a", "NAME=x\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n")); got != "Debian GNU/Linux 12 (bookworm)" {
		t.Errorf("osImage = %q", got)
	}
	if got := osImage(writeFile(t, dir, "b", "PRETTY_NAME=Alpine\n")); got != "Alpine" {
		t.Errorf("unquoted osImage = %q", got)
	}
	if got := osImage(filepath.Join(dir, "none")); got != "Unknown" {
		t.Errorf("missing os-release = %q", got)
	}
	if got := uuidFromHex("3d1219c7c4c5404aaa1f6d2a48adfda4"); got != "3D1219C7-C4C5-404A-AA1F-6D2A48ADFDA4" {
		t.Errorf("uuidFromHex = %q", got)
	}
}

func TestReadUsageFromHost(t *testing.T) {
	u, err := readUsage(hostPaths(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if u.memAvailable <= 0 || u.fsCapacity <= 0 || u.fsAvailable <= 0 || u.fsAvailable > u.fsCapacity ||
		u.pidLimit <= 0 || u.pidsInUse <= 0 || u.pidsInUse > u.pidLimit {
		t.Errorf("implausible usage %+v", u)
	}
}

func TestDiscoverNodeIP(t *testing.T) {
	ip, err := discoverNodeIP()
	if err != nil {
		t.Fatal(err)
	}
	if ip.IsLoopback() || !ip.IsGlobalUnicast() {
		t.Errorf("node IP %s is not a global unicast address", ip)
	}
}

func TestPressureConditions(t *testing.T) {
	a := &Agent{}
	a.cfg, _ = Config{Name: "x", NodeIP: []byte{192, 0, 2, 1}}.withDefaults()
	healthy := usage{memAvailable: 1 << 30, fsCapacity: 100, fsAvailable: 50, pidLimit: 1000, pidsInUse: 100}
	reasons := func(u usage, readyErr error) []string {
		var out []string
		for _, c := range a.conditions(u, readyErr) {
			out = append(out, string(c.typ)+"="+string(c.status)+"/"+c.reason)
		}
		return out
	}
	check := func(name string, got []string, want ...string) {
		t.Helper()
		if len(got) != len(want) {
			t.Fatalf("%s: %v, want %v", name, got, want)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("%s: %v, want %v", name, got, want)
				return
			}
		}
	}
	check("healthy", reasons(healthy, nil),
		"MemoryPressure=False/KubeletHasSufficientMemory", "DiskPressure=False/KubeletHasNoDiskPressure",
		"PIDPressure=False/KubeletHasSufficientPID", "Ready=True/KubeletReady")
	low := usage{memAvailable: 99 << 20, fsCapacity: 100, fsAvailable: 9, pidLimit: 1000, pidsInUse: 901}
	check("pressure", reasons(low, errors.New("runtime down")),
		"MemoryPressure=True/KubeletHasInsufficientMemory", "DiskPressure=True/KubeletHasDiskPressure",
		"PIDPressure=True/KubeletHasInsufficientPID", "Ready=False/KubeletNotReady")
	edge := usage{memAvailable: 100 << 20, fsCapacity: 100, fsAvailable: 10, pidLimit: 1000, pidsInUse: 900}
	check("at the thresholds", reasons(edge, nil),
		"MemoryPressure=False/KubeletHasSufficientMemory", "DiskPressure=False/KubeletHasNoDiskPressure",
		"PIDPressure=False/KubeletHasSufficientPID", "Ready=True/KubeletReady")
}

func TestMergeConditions(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	t1 := t0.Add(time.Minute)
	other := corev1.NodeCondition{Type: corev1.NodeNetworkUnavailable, Status: corev1.ConditionFalse, LastTransitionTime: metav1.NewTime(t0)}
	existing := []corev1.NodeCondition{
		other,
		{Type: corev1.NodeReady, Status: corev1.ConditionTrue, LastHeartbeatTime: metav1.NewTime(t0), LastTransitionTime: metav1.NewTime(t0)},
		{Type: corev1.NodeMemoryPressure, Status: corev1.ConditionFalse, LastHeartbeatTime: metav1.NewTime(t0), LastTransitionTime: metav1.NewTime(t0)},
	}
	got := mergeConditions(existing, []condition{
		{corev1.NodeMemoryPressure, corev1.ConditionTrue, "r", "m"},
		{corev1.NodeReady, corev1.ConditionTrue, "KubeletReady", "ok"},
	}, t1)
	if len(got) != 3 || got[0] != other {
		t.Fatalf("merged = %+v; want the foreign condition kept first", got)
	}
	mem, ready := got[1], got[2]
	if !mem.LastTransitionTime.Time.Equal(t1) || !mem.LastHeartbeatTime.Time.Equal(t1) {
		t.Errorf("changed condition: transition %v heartbeat %v, want both %v", mem.LastTransitionTime, mem.LastHeartbeatTime, t1)
	}
	if !ready.LastTransitionTime.Time.Equal(t0) || !ready.LastHeartbeatTime.Time.Equal(t1) {
		t.Errorf("unchanged condition: transition %v heartbeat %v, want %v and %v", ready.LastTransitionTime, ready.LastHeartbeatTime, t0, t1)
	}

	before := corev1.NodeStatus{Conditions: existing}
	heartbeatOnly := corev1.NodeStatus{Conditions: mergeConditions(existing, []condition{
		{corev1.NodeReady, corev1.ConditionTrue, "", ""},
		{corev1.NodeMemoryPressure, corev1.ConditionFalse, "", ""},
	}, t1)}
	if statusChanged(&before, &heartbeatOnly) {
		t.Error("a heartbeat alone counted as a change")
	}
	if !statusChanged(&before, &corev1.NodeStatus{Conditions: got}) {
		t.Error("a status change was not noticed")
	}
}
