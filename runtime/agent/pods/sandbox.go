package pods

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/types"

	"github.com/wasmkube/wasmkube/sandbox/cgroups"
	"github.com/wasmkube/wasmkube/sandbox/files"
	"github.com/wasmkube/wasmkube/sandbox/ipam"
	"github.com/wasmkube/wasmkube/sandbox/network"
	"github.com/wasmkube/wasmkube/sandbox/wasmhost"
)

// sandbox is a pod's made sandbox: what its containers join.
type sandbox struct {
	hostNetwork bool
	ip          net.IP
	netnsPath   string // "" for the host network
	hostsPath   string // "" when the host's files are used
	resolvPath  string
	// cgroupParent is the pod cgroup, the parent of its containers'
	// cgroups in every hierarchy.
	cgroupParent string
}

// SandboxConfig describes the node's pod networking and cgroups.
type SandboxConfig struct {
	NetnsDir      string          // where pod namespaces are pinned
	Bridge        string          // the node bridge (wk0)
	IPAM          *ipam.Allocator // over the node's podCIDR
	Cgroups       *cgroups.Manager
	PodsDir       string // per-pod files: DIR/pods/<uid>
	ClusterDNS    net.IP // the nameserver of ClusterFirst pods
	ClusterDomain string // default cluster.local
	NodeIP        net.IP
	Log           *slog.Logger
}

// Sandboxes makes and removes pod sandboxes: the pause container's role.
type Sandboxes struct{ cfg SandboxConfig }

// NewSandboxes checks the config; the node bridge must already exist.
func NewSandboxes(cfg SandboxConfig) (*Sandboxes, error) {
	if cfg.NetnsDir == "" || cfg.Bridge == "" || cfg.IPAM == nil || cfg.Cgroups == nil || cfg.PodsDir == "" {
		return nil, errors.New("pods: sandbox config needs a netns dir, bridge, IPAM, cgroups and pods dir")
	}
	if cfg.ClusterDomain == "" {
		cfg.ClusterDomain = files.DefaultClusterDomain
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	return &Sandboxes{cfg: cfg}, nil
}

func (s *Sandboxes) podDir(uid types.UID) string { return filepath.Join(s.cfg.PodsDir, string(uid)) }

// Ensure makes the pod's sandbox. Every step finds what an earlier,
// interrupted call made and keeps it, so a retry never leaks an address or
// a namespace.
func (s *Sandboxes) Ensure(ctx context.Context, pod *corev1.Pod) (_ *sandbox, err error) {
	uid := pod.UID
	dir := s.podDir(uid)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("pod directory: %w", err)
	}
	cg, err := s.cfg.Cgroups.Pod(string(uid))
	if err != nil {
		return nil, fmt.Errorf("pod cgroup: %w", err)
	}
	s.setLimits(pod, cg)
	sb := &sandbox{cgroupParent: cg.Path()}
	if pod.Spec.HostNetwork {
		sb.hostNetwork, sb.ip = true, s.cfg.NodeIP
		return sb, nil
	}

	addr, err := s.cfg.IPAM.Allocate(string(uid))
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			s.teardownNetwork(uid)
		}
	}()
	path := network.Path(s.cfg.NetnsDir, string(uid))
	if !s.networkUp(uid) {
		// Half-made leftovers of a crashed attempt are in the way.
		if err := network.Teardown(s.cfg.NetnsDir, string(uid)); err != nil {
			return nil, err
		}
		gw := s.cfg.IPAM.Gateway()
		if _, err := network.Setup(ctx, network.Config{
			PodID: string(uid), NetnsDir: s.cfg.NetnsDir, Bridge: s.cfg.Bridge, IP: addr, Gateway: gw.IP,
		}); err != nil {
			return nil, err
		}
	}
	sb.ip, sb.netnsPath = addr.IP, path
	if sb.hostsPath, err = files.WriteHosts(dir, hostsFor(pod, addr.IP, s.cfg.ClusterDomain)); err != nil {
		return nil, err
	}
	if sb.resolvPath, err = s.resolvConf(pod, dir); err != nil {
		return nil, err
	}
	return sb, nil
}

// networkUp says whether the pod's namespace is pinned and its veth is on
// the bridge, as a previous agent left it.
func (s *Sandboxes) networkUp(uid types.UID) bool {
	if _, err := os.Stat(network.Path(s.cfg.NetnsDir, string(uid))); err != nil {
		return false
	}
	_, err := net.InterfaceByName(network.HostVethName(string(uid)))
	return err == nil
}

// Adopt rebuilds the sandbox record of a pod a previous agent set up.
func (s *Sandboxes) Adopt(uid types.UID) (*sandbox, error) {
	cg, err := s.cfg.Cgroups.Pod(string(uid))
	if err != nil {
		return nil, err
	}
	sb := &sandbox{cgroupParent: cg.Path()}
	owners, err := s.cfg.IPAM.Owners()
	if err != nil {
		return nil, err
	}
	ips := owners[string(uid)]
	if len(ips) == 0 {
		sb.hostNetwork, sb.ip = true, s.cfg.NodeIP
		return sb, nil
	}
	if !s.networkUp(uid) {
		return nil, fmt.Errorf("pod %s: network namespace is gone", uid)
	}
	dir := s.podDir(uid)
	sb.ip, sb.netnsPath = ips[0], network.Path(s.cfg.NetnsDir, string(uid))
	sb.hostsPath, sb.resolvPath = filepath.Join(dir, files.HostsFile), filepath.Join(dir, files.ResolvConfFile)
	return sb, nil
}

// Remove takes the sandbox down: namespace, veth, address and cgroup. The
// pod directory (volumes, files) stays until Forget, since containers that
// exited still reference it until they are removed.
func (s *Sandboxes) Remove(ctx context.Context, uid types.UID) error {
	var errs []error
	if err := s.teardownNetwork(uid); err != nil {
		errs = append(errs, err)
	}
	cg, err := s.cfg.Cgroups.Open(string(uid))
	if err == nil {
		err = cg.Remove(ctx)
	}
	if err != nil {
		errs = append(errs, fmt.Errorf("remove pod cgroup: %w", err))
	}
	return errors.Join(errs...)
}

// List returns the pods that have an address claim or a cgroup on the
// node, made by this agent or an earlier one.
func (s *Sandboxes) List() (map[types.UID]bool, error) {
	found := map[types.UID]bool{}
	owners, err := s.cfg.IPAM.Owners()
	if err != nil {
		return nil, err
	}
	for owner := range owners {
		found[types.UID(owner)] = true
	}
	uids, err := s.cfg.Cgroups.Pods()
	if err != nil {
		return nil, err
	}
	for _, uid := range uids {
		found[types.UID(uid)] = true
	}
	return found, nil
}

func (s *Sandboxes) teardownNetwork(uid types.UID) error {
	var errs []error
	if err := network.Teardown(s.cfg.NetnsDir, string(uid)); err != nil {
		errs = append(errs, err)
	}
	if err := s.cfg.IPAM.ReleaseOwner(string(uid)); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Forget removes the pod's directory, once nothing uses it any more.
func (s *Sandboxes) Forget(uid types.UID) error {
	if err := os.RemoveAll(s.podDir(uid)); err != nil {
		return fmt.Errorf("remove pod directory: %w", err)
	}
	return nil
}

// ContainerDir is where the pod keeps files of one container attempt (its
// termination log).
func (s *Sandboxes) ContainerDir(uid types.UID, container string) string {
	return filepath.Join(s.podDir(uid), "containers", container)
}

// setLimits applies pod-level limits as kubelet does: only when every
// container has one, the sum of the app containers' or the largest init
// container's, whichever is more. A node without the controller runs the
// pod with container limits only.
//
// A wasm pod gets no pod-level memory limit: its containers' limits cap
// their guests' linear memory, and its sandbox process, which holds the
// compiled code, is not any one container's to pay for.
func (s *Sandboxes) setLimits(pod *corev1.Pod, cg *cgroups.Cgroup) {
	mem, ok := podLimit(pod, corev1.ResourceMemory)
	if rc := pod.Spec.RuntimeClassName; rc != nil && *rc == "wasm" {
		ok = false
	}
	for _, dir := range cg.Dirs() {
		if _, err := os.Stat(filepath.Join(dir, wasmhost.CgroupLeaf)); err == nil {
			ok = false // a wasm pod met again after an agent restart
		}
	}
	if ok {
		if err := cg.SetMemoryLimit(mem.Value()); err != nil {
			s.cfg.Log.Debug("pods: pod memory limit not set", "pod", pod.Namespace+"/"+pod.Name, "err", err)
		}
	}
}

func podLimit(pod *corev1.Pod, name corev1.ResourceName) (resource.Quantity, bool) {
	var sum, maxInit resource.Quantity
	for _, c := range pod.Spec.Containers {
		q, ok := c.Resources.Limits[name]
		if !ok {
			return q, false
		}
		sum.Add(q)
	}
	for _, c := range pod.Spec.InitContainers {
		q, ok := c.Resources.Limits[name]
		if !ok {
			return q, false
		}
		if isSidecar(&c) {
			sum.Add(q)
		} else if q.Cmp(maxInit) > 0 {
			maxInit = q
		}
	}
	if maxInit.Cmp(sum) > 0 {
		return maxInit, true
	}
	return sum, true
}

func hostsFor(pod *corev1.Pod, ip net.IP, domain string) files.Hosts {
	h := files.Hosts{IP: ip, Hostname: podHostname(pod)}
	if pod.Spec.Subdomain != "" {
		h.FQDN = fmt.Sprintf("%s.%s.%s.svc.%s", h.Hostname, pod.Spec.Subdomain, pod.Namespace, domain)
	}
	for _, a := range pod.Spec.HostAliases {
		h.Aliases = append(h.Aliases, files.HostAlias{IP: a.IP, Hostnames: a.Hostnames})
	}
	return h
}

// podHostname is spec.hostname, or the pod's name cut to a DNS label.
func podHostname(pod *corev1.Pod) string {
	if pod.Spec.Hostname != "" {
		return pod.Spec.Hostname
	}
	name := pod.Name
	if len(name) > 63 {
		name = name[:63]
	}
	return name
}

// resolvConf writes the pod's resolver file per dnsPolicy. Default takes
// the node's; ClusterFirst (and ClusterFirstWithHostNet) point at the
// cluster DNS.
func (s *Sandboxes) resolvConf(pod *corev1.Pod, dir string) (string, error) {
	if pod.Spec.DNSPolicy == corev1.DNSDefault || s.cfg.ClusterDNS == nil {
		return "/etc/resolv.conf", nil
	}
	return files.WriteResolvConf(dir, files.ResolvConf{
		Nameserver: s.cfg.ClusterDNS, Namespace: pod.Namespace, ClusterDomain: s.cfg.ClusterDomain,
	})
}
