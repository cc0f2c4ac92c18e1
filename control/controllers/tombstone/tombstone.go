package tombstone

import "k8s.io/client-go/tools/cache"

// Unwrap returns obj, or the object a tombstone holds, as a T.
func Unwrap[T any](obj any) (T, bool) {
	if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = tomb.Obj
	}
	v, ok := obj.(T)
	return v, ok
}
