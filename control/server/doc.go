// Package server assembles the control plane run by `wasmkube server`: etcd
// (embedded, or an external cluster), the storage backend and its compactor,
// one registry store per resource, TLS material and the admin kubeconfig,
// and the HTTPS API server. Later components (scheduler, controllers) are
// started here too and reach the API only through client-go, like any
// other client.
package server
