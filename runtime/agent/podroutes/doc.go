// Package podroutes gives a node a route to every other node's pods: for
// each other Node with a pod range (spec.podCIDRs) and an InternalIP of the
// same family, a route "<their pod range> via <their InternalIP>" in the
// main table, the host-gw scheme of flannel and kube-router. Pod traffic
// between nodes then needs no encapsulation, but the nodes must share an L2
// segment: a gateway must be directly reachable, on the interface whose
// connected subnet holds it. A Node whose InternalIP is not directly
// reachable gets no route, a log line and a Warning Event (NoRouteToNode).
//
// Every route the controller makes carries its own route protocol, Protocol
// (119), and it lists, replaces and deletes only routes with that protocol:
// routes made by anyone else, even to the same destination, are never
// touched, and a foreign route to a pod range wins over the one it would
// make. Foreign routes to parts of a pod range take those parts whatever
// the controller does: it routes the range and warns (NoRouteToNode again)
// with the parts named. At start, and then periodically, it reconciles the table against all
// Nodes, so routes left by an earlier run for Nodes that are gone are
// removed.
//
// The controller has the shape of the cluster's other controllers: a Node
// informer (shared with the agent's other watchers when given one), a
// rate-limited workqueue, and one idempotent sync per Node name. Route
// operations go through the Netlink interface, which a *netlink.Handle for
// another network namespace satisfies.
package podroutes
