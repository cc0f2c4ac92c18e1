// Package fieldpath resolves a pod's fieldRef and resourceFieldRef
// selectors to strings, as the downward API does, for both of its
// consumers: environment variables and downwardAPI volume files.
//
// The two consumers do not accept quite the same selectors, nor take the
// pod's addresses and the stand-ins for unset limits from the same place,
// so those choices are left to the caller: FieldValue is given the
// addresses to report (StatusIPs reads them from the pod's status), and
// ResourceValue is given the lists whose amounts stand in for a container's
// unset limits (PodLimits and the node's allocatable resources, in the
// order the caller wants them tried). Checks that only one consumer makes,
// such as which field labels an environment variable may name, stay with
// that consumer.
package fieldpath
