// Package envvars builds a container's environment the way kubelet does:
// the Service variables (KUBERNETES_SERVICE_HOST, the docker-link style
// FOO_PORT_80_TCP_ADDR and the rest), the container's envFrom sources, then
// its env entries with $(VAR) expansion, downward API fields, resource
// fields and ConfigMap/Secret keys, each layer overriding the one before.
//
// A ConfigMap, Secret or key that is required but missing makes Resolve
// fail with an error wrapping ErrConfigNotFound, worded as kubelet words it;
// the agent reports such a container as Waiting with reason
// CreateContainerConfigError.
package envvars
