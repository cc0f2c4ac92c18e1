// Package servicelb gives LoadBalancer Services an address, in the spirit
// of k3s's service load balancer: with no cloud provider, addresses come
// from a pool the administrator names (--loadbalancer-ip-range), and the
// node's service proxy answers on them (ebpf/proxy programs
// status.loadBalancer.ingress like external IPs).
//
// Each LoadBalancer Service without a loadBalancerClass gets one address:
// spec.loadBalancerIP when it lies in the pool and is free, else the lowest
// free one; it is written to status.loadBalancer.ingress with ipMode VIP.
// The address is released when the Service is deleted or stops being a
// LoadBalancer (its status is cleared). The Services' statuses are the
// only record of the allocations: the controller rebuilds them at start.
// When the pool is exhausted the Service stays <pending> with a Warning
// event (AllocationFailed) and is retried when an address is released.
package servicelb
