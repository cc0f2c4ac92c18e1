// Package proxy is the node's service proxy, the kube-proxy role: it watches
// Services and EndpointSlices and keeps the eBPF load balancer's maps (the
// ebpf/lb datapath) equal to what they say.
//
// It is built like the controllers in control/controllers: informers feed a
// rate-limited workqueue keyed by the Service's namespace/name, and one
// idempotent sync recomputes that Service's frontends and writes only the
// ones that changed. At start, once the caches have synced, every frontend
// is written in a single Reconcile, which also removes whatever a previous
// run left behind. There is no periodic resync: the maps change only when
// the API objects do.
//
// Translation follows kube-proxy's semantics (see translate.go): ClusterIPs
// are matched by the socket hooks only; NodePorts, external IPs and
// LoadBalancer addresses get a socket frontend for traffic that starts on
// the node and an external frontend for packets arriving from outside, so
// that externalTrafficPolicy: Local can narrow the latter to local endpoints.
package proxy
