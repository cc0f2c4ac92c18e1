package apiserver

import (
	"bytes"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

const protobufMediaType = "application/vnd.kubernetes.protobuf"

// protobufMagic starts every Kubernetes protobuf envelope ("k8s\0").
var protobufMagic = []byte{0x6b, 0x38, 0x73, 0x00}

// decodeProtobuf reads a Kubernetes protobuf envelope (a runtime.Unknown
// holding the object's own protobuf encoding), which kubectl and client-go
// send for built-in types. Responses stay JSON: every such client also
// accepts JSON.
func decodeProtobuf(body []byte, obj runtime.Object, gvk schema.GroupVersionKind) error {
	if !bytes.HasPrefix(body, protobufMagic) {
		return apierrors.NewBadRequest("protobuf body does not start with the Kubernetes envelope prefix")
	}
	var envelope runtime.Unknown
	if err := envelope.Unmarshal(body[len(protobufMagic):]); err != nil {
		return apierrors.NewBadRequest(fmt.Sprintf("decoding protobuf envelope: %v", err))
	}
	if gvk.Empty() {
		// Options objects travel under whichever group version the client
		// used; their type is known from the request, not the envelope.
	} else if envelope.APIVersion != "" && envelope.APIVersion != gvk.GroupVersion().String() {
		return apierrors.NewBadRequest(fmt.Sprintf("the API version in the data (%s) does not match the expected API version (%s)", envelope.APIVersion, gvk.GroupVersion()))
	}
	if !gvk.Empty() && envelope.Kind != "" && envelope.Kind != gvk.Kind {
		return apierrors.NewBadRequest(fmt.Sprintf("the kind in the data (%s) does not match the expected kind (%s)", envelope.Kind, gvk.Kind))
	}
	u, ok := obj.(interface{ Unmarshal([]byte) error })
	if !ok {
		return unsupportedMediaType(protobufMediaType)
	}
	if err := u.Unmarshal(envelope.Raw); err != nil {
		return apierrors.NewBadRequest(fmt.Sprintf("%s in version %q cannot be handled as a %s: %v", gvk.Kind, gvk.Version, gvk.Kind, err))
	}
	if !gvk.Empty() {
		obj.GetObjectKind().SetGroupVersionKind(gvk)
	}
	return nil
}
