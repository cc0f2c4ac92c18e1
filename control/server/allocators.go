package server

import (
	"fmt"
	"net"

	"github.com/wasmkube/wasmkube/control/allocator"
	"github.com/wasmkube/wasmkube/control/resources"
)

// NodePort range, as upstream's default --service-node-port-range.
const (
	nodePortBase = 30000
	nodePortSize = 32767 - nodePortBase + 1
)

// Well-known addresses of the service range: the API's own `kubernetes`
// Service takes the first, cluster DNS the tenth.
const (
	apiServiceOrdinal = 1
	dnsServiceOrdinal = 10
)

func (s *Server) newAllocators() (resources.Deps, error) {
	cidr := s.opts.ServiceClusterIPRange
	if cidr == "" {
		cidr = "10.96.0.0/12"
	}
	_, ipnet, err := net.ParseCIDR(cidr)
	if err != nil {
		return resources.Deps{}, fmt.Errorf("server: --service-cluster-ip-range %q: %w", cidr, err)
	}
	probe, err := allocator.NewIPRange(s.client, "", ipnet)
	if err != nil {
		return resources.Deps{}, fmt.Errorf("server: --service-cluster-ip-range: %w", err)
	}
	ips, err := allocator.NewIPRange(s.client, "/registry/ranges/serviceips", ipnet,
		probe.Nth(apiServiceOrdinal), probe.Nth(dnsServiceOrdinal))
	if err != nil {
		return resources.Deps{}, err
	}
	s.serviceIPs = ips
	return resources.Deps{Services: resources.ServiceAllocators{
		ClusterIPs: ips,
		NodePorts:  allocator.NewPortRange(s.client, "/registry/ranges/servicenodeports", nodePortBase, nodePortSize),
	}}, nil
}

// DNSServiceIP is the cluster DNS address (.10 of the service range), which
// nodes write into every pod's resolv.conf.
func (s *Server) DNSServiceIP() net.IP { return s.serviceIPs.Nth(dnsServiceOrdinal) }
