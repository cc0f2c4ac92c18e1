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
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"

	"github.com/wasmkube/wasmkube/control/controllers/framework"
	"github.com/wasmkube/wasmkube/ebpf/lb"
	"github.com/wasmkube/wasmkube/ebpf/proxy"
	"github.com/wasmkube/wasmkube/runtime/agent/podroutes"
	"github.com/wasmkube/wasmkube/runtime/dns"
	"github.com/wasmkube/wasmkube/sandbox/cgroups"
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
	podCIDR  netip.Prefix // this node's own pods
	bridge   string
	// podsCgroup holds every pod of this node (cgroup2 path): their
	// sockets reach NodePorts on the node's own IPs.
	podsCgroup string
}

// startServices loads the eBPF Service datapath (socket hooks at the
// cgroup2 root, tc programs on the node IP's interface), starts the service
// proxy that programs it, and the node's DNS server with its endpoint in
// the kube-dns Service. The proxy and the DNS server share one watch of
// Services and EndpointSlices; the routes to other nodes' pods are kept
// from a watch of Nodes through the same factory.
func startServices(ctx context.Context, wg *sync.WaitGroup, client kubernetes.Interface, cfg Config, sn serviceNetwork) error {
	log := cfg.Log
	dp, err := openDatapath(cfg, sn)
	if err != nil {
		return fmt.Errorf("agent: service datapath: %w", err)
	}
	factory := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithTransform(framework.StripManagedFields))
	p := proxy.New(client, dp, proxy.WithNodeName(sn.nodeName), proxy.WithNodeIPs(sn.nodeIP),
		proxy.WithLogger(log), proxy.WithInformers(factory))
	srv := dns.New(client, dns.WithLogger(log), dns.WithInformers(factory))
	addr := netip.AddrPortFrom(sn.gateway, dnsPort).String()
	var users sync.WaitGroup
	users.Go(func() {
		defer dp.Close()
		if err := p.Run(ctx); err != nil && ctx.Err() == nil {
			log.Error("agent: service proxy stopped", "err", err)
		}
	})
	users.Go(func() {
		if err := srv.Serve(ctx, addr); err != nil && ctx.Err() == nil {
			log.Error("agent: DNS server stopped", "addr", addr, "err", err)
		}
	})
	// Routes to the other nodes' pod ranges (host-gw) watch Nodes
	// through the same factory.
	routes := podroutes.New(client, podroutes.WithNodeName(sn.nodeName), podroutes.WithLogger(log),
		podroutes.WithInformers(factory))
	users.Go(func() {
		if err := routes.Run(ctx); err != nil && ctx.Err() == nil {
			log.Error("agent: pod routes stopped", "err", err)
		}
	})
	wg.Go(func() {
		users.Wait()
		factory.Shutdown()
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

// openDatapath loads the datapath pinned under the node's BPF directory and
// attaches it: the socket hooks to the cgroup2 root, the tc programs to the
// node IP's interface. Traffic from outside to a NodePort, and pods'
// traffic to the world, is routed through this node, so forwarding is
// enabled on the two interfaces it crosses, not machine-wide.
func openDatapath(cfg Config, sn serviceNetwork) (_ *lb.Datapath, err error) {
	bpfDir := cfg.BPFDir
	if bpfDir == "" {
		bpfDir = DefaultBPFDir
	}
	dp, err := lb.Open(filepath.Join(bpfDir, sn.nodeName), lb.WithLogger(cfg.Log))
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			dp.Close()
		}
	}()
	root, err := cgroups.Mountpoint()
	if err != nil {
		return nil, err
	}
	if err := dp.AttachCgroup(root); err != nil {
		return nil, err
	}
	if err := dp.SetNodeConfig(lb.NodeConfig{NodeIP: sn.nodeIP, ClusterCIDR: sn.cluster, ServiceCIDR: sn.services, PodCIDR: sn.podCIDR,
		PodsCgroup: sn.podsCgroup}); err != nil {
		return nil, err
	}
	ifname, err := interfaceOf(sn.nodeIP)
	if err != nil {
		return nil, err
	}
	forward := []string{sn.bridge}
	if ifname != "lo" {
		if err := dp.AttachInterface(ifname); err != nil {
			return nil, err
		}
		forward = append(forward, ifname)
	}
	for _, dev := range forward {
		if err := enableForwarding(dev); err != nil {
			return nil, err
		}
	}
	return dp, nil
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

// clusterOf is the configured cluster range, else the node's own pod range
// (a single node's pods are all in it).
func clusterOf(cluster netip.Prefix, podCIDR *net.IPNet) netip.Prefix {
	if cluster.IsValid() {
		return cluster
	}
	return prefixOf(podCIDR)
}

// prefixOf converts an IPv4 network.
func prefixOf(n *net.IPNet) netip.Prefix {
	ones, _ := n.Mask.Size()
	return netip.PrefixFrom(addrOf(n.IP), ones).Masked()
}
