// Package server is the node agent's HTTPS endpoint, the kubelet's server
// for the API server's pods/log, pods/exec, pods/attach and
// pods/portforward: /containerLogs, /exec, /attach and /portForward, with
// upstream's streaming protocols (SPDY and the websocket channels).
//
// Authentication and authorization. The agent serves a self-signed
// certificate kept under its data directory, as the kubelet does without
// --tls-cert-file. Clients must present a TLS certificate that chains to
// the cluster CA the agent already trusts for the API server. Instead of
// asking the API server (the kubelet's webhook mode, a SubjectAccessReview
// per request), the agent authorizes a fixed set of identities: the API
// server's kubelet client (user kube-apiserver-kubelet-client) and members
// of system:masters. Everyone else is refused: 401 without a valid
// certificate, 403 with one. That keeps the node usable when the API
// server is unreachable and costs no round trip per stream.
package server
