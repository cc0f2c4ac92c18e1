// Package dns is the cluster DNS server (the role CoreDNS plays in a
// kubeadm cluster), run by every node agent on its bridge's gateway
// address and published under the kube-dns Service.
//
// It answers the names of the Kubernetes DNS specification from an index
// that Service and EndpointSlice informers keep up to date:
//
//   - <svc>.<ns>.svc.<domain>: A/AAAA of the cluster IPs, or of the ready
//     endpoints for a headless Service; CNAME for an ExternalName Service
//   - <host>.<svc>.<ns>.svc.<domain>: A/AAAA of a headless Service's
//     endpoint, by its hostname or dashed address
//   - _<port>._<proto>.<svc>.<ns>.svc.<domain>: SRV of named ports
//   - <a-b-c-d>.<ns>.pod.<domain>: A of the address spelled in the name
//   - in-addr.arpa/ip6.arpa: PTR of cluster IPs and headless endpoints
//
// A name inside the cluster domain that has no records is NXDOMAIN (or
// NODATA when the name exists with other types), with the zone's SOA in
// the authority section; such names are never forwarded. Every other name
// is forwarded to the nameservers of the node's resolv.conf, in order.
//
// PublishEndpoint is the agent's side of the kube-dns Service: the
// Service has no selector, and each agent writes an EndpointSlice naming
// its own server.
package dns
