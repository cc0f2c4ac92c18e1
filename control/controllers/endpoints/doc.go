// Package endpoints is the legacy Endpoints controller: for every Service
// with a selector it keeps the core/v1 Endpoints object of the same name,
// because `kubectl describe service` and older clients still read it even
// though EndpointSlices are the source every new consumer uses.
//
// It applies the same pod rules as package endpointslice (which it imports
// for them), so the two views never disagree: ready pods are addresses,
// not-ready pods notReadyAddresses (or addresses with
// publishNotReadyAddresses), terminating pods are left out, ports are
// resolved per pod and pods with the same resolved ports share a subset.
// The object is rewritten only when its subsets or labels change, and it is
// labelled endpointslice.kubernetes.io/skip-mirror so that a mirroring
// controller does not copy it back into slices.
//
// Upstream caps an Endpoints object at 1000 addresses and marks it
// endpoints.kubernetes.io/over-capacity: truncated; so does this one.
package endpoints
