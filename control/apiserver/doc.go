// Package apiserver serves the Kubernetes REST API: discovery, every
// resource of control/resources through the generic control/registry store,
// watch streams, server-side tables, patches, and Status errors, with the
// wire behaviour upstream kubectl and client-go expect.
//
// Routing is chi for the fixed paths (/api, /apis, /version, health, openapi)
// and one resource handler for everything below a group version: the request
// path is parsed once into a requestInfo, as kube-apiserver does, and the same
// information drives authorization.
package apiserver
