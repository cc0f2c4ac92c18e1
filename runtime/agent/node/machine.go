package node

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"

	"github.com/vishvananda/netlink"
)

// machineInfo holds facts that do not change while the agent runs.
type machineInfo struct {
	memTotal      int64 // bytes
	machineID     string
	systemUUID    string
	bootID        string
	kernelVersion string
	osImage       string
}

// usage is what the pressure conditions are computed from; it is read
// anew on every status evaluation.
type usage struct {
	memAvailable int64 // bytes
	fsCapacity   int64 // bytes of DataDir's filesystem
	fsAvailable  int64 // bytes available to unprivileged users
	pidLimit     int64
	pidsInUse    int64
}

// procPaths are the files machine facts come from; tests point them at
// fixtures.
type procPaths struct {
	meminfo, machineID, productUUID, bootID, osRelease, pidMax, threadsMax, loadavg, kernelRelease string
}

func hostPaths() procPaths {
	return procPaths{
		meminfo:       "/proc/meminfo",
		machineID:     "/etc/machine-id",
		productUUID:   "/sys/class/dmi/id/product_uuid",
		bootID:        "/proc/sys/kernel/random/boot_id",
		osRelease:     "/etc/os-release",
		pidMax:        "/proc/sys/kernel/pid_max",
		threadsMax:    "/proc/sys/kernel/threads-max",
		loadavg:       "/proc/loadavg",
		kernelRelease: "/proc/sys/kernel/osrelease",
	}
}

func readMachineInfo(p procPaths) (machineInfo, error) {
	var mi machineInfo
	mem, err := meminfo(p.meminfo)
	if err != nil {
		return mi, err
	}
	mi.memTotal = mem["MemTotal"]
	if mi.memTotal <= 0 {
		return mi, fmt.Errorf("%s: no MemTotal", p.meminfo)
	}
	mi.machineID = readTrimmed(p.machineID)
	mi.bootID = readTrimmed(p.bootID)
	mi.systemUUID = strings.ToUpper(readTrimmed(p.productUUID))
	if mi.systemUUID == "" {
		// VMs and containers often expose no DMI table; the machine ID is
		// the next most stable per-machine identifier, shaped as a UUID so
		// that consumers parsing systemUUID still accept it.
		mi.systemUUID = uuidFromHex(mi.machineID)
	}
	// The same string as uname -r, without syscall.Utsname, whose field
	// types differ between architectures (int8 on amd64, uint8 on arm).
	mi.kernelVersion = readTrimmed(p.kernelRelease)
	if mi.kernelVersion == "" {
		return mi, fmt.Errorf("no kernel release in %s", p.kernelRelease)
	}
	mi.osImage = osImage(p.osRelease)
	return mi, nil
}

func readUsage(p procPaths, dataDir string) (usage, error) {
	var u usage
	mem, err := meminfo(p.meminfo)
	if err != nil {
		return u, err
	}
	avail, ok := mem["MemAvailable"]
	if !ok {
		// Kernels before 3.14 lack MemAvailable; free memory understates
		// what can be reclaimed, which errs towards reporting pressure.
		avail = mem["MemFree"]
	}
	u.memAvailable = avail
	var st syscall.Statfs_t
	if err := syscall.Statfs(dataDir, &st); err != nil {
		return u, fmt.Errorf("statfs %s: %w", dataDir, err)
	}
	// Bsize is int32 on some 32-bit architectures; widen before multiplying.
	u.fsCapacity = int64(st.Blocks) * int64(st.Bsize)
	u.fsAvailable = int64(st.Bavail) * int64(st.Bsize)
	// As upstream: the limit is the smaller of pid_max and threads-max,
	// since every thread takes a pid.
	u.pidLimit, err = readInt(p.pidMax)
	if err != nil {
		return u, err
	}
	if tm, err := readInt(p.threadsMax); err == nil && tm < u.pidLimit {
		u.pidLimit = tm
	}
	u.pidsInUse, err = tasks(p.loadavg)
	return u, err
}

// meminfo parses /proc/meminfo into bytes per field.
func meminfo(path string) (map[string]int64, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading meminfo: %w", err)
	}
	out := map[string]int64{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		key, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			continue
		}
		v, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			continue
		}
		if len(f) > 1 && f[1] == "kB" {
			v *= 1024
		}
		out[key] = v
	}
	return out, nil
}

// tasks reads the number of scheduling entities (threads, hence pids in
// use) from the fourth field of /proc/loadavg, "running/total", as
// upstream's pid stats do: it is one read instead of a walk of /proc.
func tasks(path string) (int64, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("reading loadavg: %w", err)
	}
	f := strings.Fields(string(data))
	if len(f) < 4 {
		return 0, fmt.Errorf("%s: unexpected content %q", path, data)
	}
	_, total, ok := strings.Cut(f[3], "/")
	if !ok {
		return 0, fmt.Errorf("%s: unexpected task field %q", path, f[3])
	}
	n, err := strconv.ParseInt(total, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	return n, nil
}

func readInt(path string) (int64, error) {
	n, err := strconv.ParseInt(readTrimmed(path), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("reading %s: %w", path, err)
	}
	return n, nil
}

// readTrimmed returns "" for a missing file: identifiers such as the DMI
// UUID are optional, and an empty field is what upstream reports too.
func readTrimmed(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(data))
}

func osImage(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return "Unknown"
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "PRETTY_NAME="); ok {
			if uq, err := strconv.Unquote(v); err == nil {
				v = uq
			}
			return strings.Trim(v, `'"`)
		}
	}
	return "Unknown"
}

func uuidFromHex(h string) string {
	if len(h) != 32 {
		return h
	}
	return strings.ToUpper(h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32])
}

// discoverNodeIP picks the address other machines most likely reach this
// one on: that of the interface carrying the default route, IPv4 first.
// Without netlink (or a default route, as on an isolated edge box) it
// falls back to the first global address of any up interface.
func discoverNodeIP() (net.IP, error) {
	for _, family := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		if ip := defaultRouteIP(family); ip != nil {
			return ip, nil
		}
	}
	ifaces, err := net.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("listing interfaces: %w", err)
	}
	var v6 net.IP
	for _, ifc := range ifaces {
		if ifc.Flags&net.FlagUp == 0 || ifc.Flags&net.FlagLoopback != 0 {
			continue
		}
		addrs, err := ifc.Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			ipn, ok := a.(*net.IPNet)
			if !ok || !ipn.IP.IsGlobalUnicast() {
				continue
			}
			if ip4 := ipn.IP.To4(); ip4 != nil {
				return ip4, nil
			}
			if v6 == nil {
				v6 = ipn.IP
			}
		}
	}
	if v6 != nil {
		return v6, nil
	}
	return nil, errors.New("no interface has a global unicast address; set NodeIP")
}

func defaultRouteIP(family int) net.IP {
	routes, err := netlink.RouteList(nil, family)
	if err != nil {
		return nil
	}
	for _, r := range routes {
		if r.Dst != nil {
			if ones, _ := r.Dst.Mask.Size(); ones != 0 {
				continue
			}
		}
		link, err := netlink.LinkByIndex(r.LinkIndex)
		if err != nil {
			continue
		}
		addrs, err := netlink.AddrList(link, family)
		if err != nil {
			continue
		}
		for _, a := range addrs {
			if a.IP.IsGlobalUnicast() {
				return a.IP
			}
		}
	}
	return nil
}
