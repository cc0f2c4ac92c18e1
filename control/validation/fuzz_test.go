package validation

import (
	"encoding/json"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/wasmkube/wasmkube/control/defaults"
)

// FuzzValidatePod decodes arbitrary JSON into a Pod; defaulting,
// validation and update validation must never panic.
func FuzzValidatePod(f *testing.F) {
	f.Add([]byte(`{"metadata":{"name":"p","namespace":"default"},"spec":{"containers":[{"name":"c","image":"nginx"}]}}`))
	f.Add([]byte(`{"spec":{"hostNetwork":true,"containers":[{"ports":[{"containerPort":80}]}],"volumes":[{"name":"v"}]}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		pod := &corev1.Pod{}
		if err := json.Unmarshal(data, pod); err != nil {
			return
		}
		old := pod.DeepCopy()
		defaults.Apply(pod)
		_ = Validate(pod)
		_ = ValidateUpdate(pod, old)
		_ = ValidateUpdate(old, pod)
	})
}
