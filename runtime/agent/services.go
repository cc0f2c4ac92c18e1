package agent

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sync"

	"github.com/vishvananda/netlink"
	"k8s.io/client-go/kubernetes"

	"github.com/wasmkube/wasmkube/ebpf/lb"
	"github.com/wasmkube/wasmkube/ebpf/proxy"
	"github.com/wasmkube/wasmkube/runtime/dns"
)

// DefaultBPFDir is where the agent pins its BPF maps and links, one
// directory per node, so that Service traffic outlives the agent.
const DefaultBPFDir = "/sys/fs/bpf/wasmkube"

// dnsPort is where the node's DNS server answers, on the bridge's gateway
// address; pods reach it through the kube-dns Service.
const dnsPort = 53

// serviceNetwork is what the node's Service datapath needs to know.
type serviceNetwork struct {
	nodeName string
	nodeIP   netip.Addr
	gateway  netip.Addr // the bridge's address: the DNS server's
	cluster  netip.Prefix
	services netip.Prefix
	bridge   string
}

// startServices loads the eBPF Service datapath (socket hooks at the
// cgroup2 root, tc programs on the node IP's interface), starts the service
// proxy that programs it, and the node's DNS server with its endpoint in
// the kube-dns Service.
func startServices(ctx context.Context, wg *sync.WaitGroup, client kubernetes.Interface, cfg Config, sn serviceNetwork) error {
	log := cfg.Log
	bpfDir := cfg.BPFDir
	if bpfDir == "" {
		bpfDir = DefaultBPFDir
	}
	dp, err := lb.Open(filepath.Join(bpfDir, sn.nodeName))
	if err != nil {
		return fmt.Errorf("agent: service datapath: %w", err)
	}
	root, err := lb.Cgroup2Root()
	if err != nil {
		dp.Close()
		return fmt.Errorf("agent: service datapath: %w", err)
	}
	if err := dp.AttachCgroup(root); err != nil {
		dp.Close()
		return fmt.Errorf("agent: service datapath: %w", err)
	}
	if err := dp.SetNodeConfig(lb.NodeConfig{NodeIP: sn.nodeIP, ClusterCIDR: sn.cluster, ServiceCIDR: sn.services}); err != nil {
		dp.Close()
		return fmt.Errorf("agent: service datapath: %w", err)
	}
	ifname, err := interfaceOf(sn.nodeIP)
	if err != nil {
		dp.Close()
		return fmt.Errorf("agent: service datapath: %w", err)
	}
	if ifname != "lo" {
		if err := dp.AttachInterface(ifname); err != nil {
			dp.Close()
			return fmt.Errorf("agent: service datapath: %w", err)
		}
	}
	// Traffic from outside to a NodePort, and pods' traffic to the world,
	// is routed through this node: forwarding on the two interfaces it
	// crosses, not machine-wide.
	for _, dev := range []string{ifname, sn.bridge} {
		if dev == "lo" {
			continue
		}
		if err := enableForwarding(dev); err != nil {
			dp.Close()
			return fmt.Errorf("agent: %w", err)
		}
	}
	p := proxy.New(client, dp, proxy.WithNodeName(sn.nodeName), proxy.WithNodeIPs(sn.nodeIP), proxy.WithLogger(log))
	wg.Go(func() {
		defer dp.Close()
		if err := p.Run(ctx); err != nil && ctx.Err() == nil {
			log.Error("agent: service proxy stopped", "err", err)
		}
	})

	srv := dns.New(client, dns.WithLogger(log))
	addr := netip.AddrPortFrom(sn.gateway, dnsPort).String()
	wg.Go(func() {
		if err := srv.Serve(ctx, addr); err != nil && ctx.Err() == nil {
			log.Error("agent: DNS server stopped", "addr", addr, "err", err)
		}
	})
	wg.Go(func() {
		select {
		case <-srv.Ready():
		case <-ctx.Done():
			return
		}
		if err := dns.PublishEndpoint(ctx, client, sn.nodeName, sn.gateway, dnsPort); err != nil && ctx.Err() == nil {
			log.Error("agent: publish the node's DNS endpoint", "err", err)
		}
	})
	return nil
}

// interfaceOf names the interface that holds ip.
func interfaceOf(ip netip.Addr) (string, error) {
	if ip.IsLoopback() {
		return "lo", nil
	}
	addrs, err := netlink.AddrList(nil, netlink.FAMILY_V4)
	if err != nil {
		return "", fmt.Errorf("list addresses: %w", err)
	}
	for _, a := range addrs {
		if got, ok := netip.AddrFromSlice(a.IP.To4()); ok && got == ip {
			l, err := netlink.LinkByIndex(a.LinkIndex)
			if err != nil {
				return "", fmt.Errorf("interface of %s: %w", ip, err)
			}
			return l.Attrs().Name, nil
		}
	}
	return "", fmt.Errorf("no interface holds the node IP %s", ip)
}

// enableForwarding lets dev forward IPv4 packets.
func enableForwarding(dev string) error {
	p := filepath.Join("/proc/sys/net/ipv4/conf", dev, "forwarding")
	if b, err := os.ReadFile(p); err == nil && len(b) > 0 && b[0] == '1' {
		return nil
	}
	if err := os.WriteFile(p, []byte("1"), 0o644); err != nil {
		return fmt.Errorf("enable forwarding on %s: %w", dev, err)
	}
	return nil
}

// addrOf converts an IPv4 net.IP; anything else is the zero Addr.
func addrOf(ip net.IP) netip.Addr {
	a, _ := netip.AddrFromSlice(ip.To4())
	return a
}

// gatewayOf is the bridge's address in the node's pod range, as ipam gives
// it: the range's first host.
func gatewayOf(podCIDR *net.IPNet) netip.Addr {
	return addrOf(podCIDR.IP.Mask(podCIDR.Mask)).Next()
}

// clusterOf is the configured cluster range, else the node's own pod range
// (a single node's pods are all in it).
func clusterOf(cluster netip.Prefix, podCIDR *net.IPNet) netip.Prefix {
	if cluster.IsValid() {
		return cluster
	}
	ones, _ := podCIDR.Mask.Size()
	return netip.PrefixFrom(addrOf(podCIDR.IP.Mask(podCIDR.Mask)), ones)
}
