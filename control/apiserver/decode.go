package apiserver

import (
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// decodeBody reads the request body into a new object of the store's kind.
func (h *request) decodeBody(newObj func() runtime.Object, fieldValidation string) (runtime.Object, []string, error) {
	return h.decodeBodyAs(newObj, h.store.Strategy.Kind, fieldValidation)
}

// decodeBodyAs reads the request body into newObj(), which must be of kind
// gvk. Unknown and duplicate fields are handled per fieldValidation: Strict
// refuses them (400), Warn (the default) reports them in Warning headers,
// Ignore drops them silently — kube-apiserver's rules.
func (h *request) decodeBodyAs(newObj func() runtime.Object, gvk schema.GroupVersionKind, fieldValidation string) (runtime.Object, []string, error) {
	body, err := readBody(h.r)
	if err != nil {
		return nil, nil, err
	}
	obj := newObj()
	if ct := h.r.Header.Get("Content-Type"); strings.HasPrefix(ct, protobufMediaType) {
		return obj, nil, decodeProtobuf(body, obj, gvk)
	}
	data, err := toJSON(body, h.r.Header.Get("Content-Type"))
	if err != nil {
		return nil, nil, asBadRequest(err)
	}
	strictErrs, err := decodeStrict(data, obj, gvk)
	if err != nil {
		return nil, nil, err
	}
	warnings, err := applyFieldValidation(strictErrs, fieldValidation, gvk)
	return obj, warnings, err
}

// decodeStrict unmarshals JSON data into obj, checking apiVersion and kind
// against gvk, and returns the strict-decoding problems separately.
func decodeStrict(data []byte, obj runtime.Object, gvk schema.GroupVersionKind) ([]error, error) {
	var tm metav1.TypeMeta
	if err := json.Unmarshal(data, &tm); err != nil {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("couldn't get version/kind; json parse error: %v", err))
	}
	if tm.APIVersion != "" && tm.APIVersion != gvk.GroupVersion().String() {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("the API version in the data (%s) does not match the expected API version (%s)", tm.APIVersion, gvk.GroupVersion()))
	}
	if tm.Kind != "" && tm.Kind != gvk.Kind {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("the kind in the data (%s) does not match the expected kind (%s)", tm.Kind, gvk.Kind))
	}
	strictErrs, err := kjson.UnmarshalStrict(data, obj, kjson.DisallowDuplicateFields, kjson.DisallowUnknownFields)
	if err != nil {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("%s in version %q cannot be handled as a %s: %v", gvk.Kind, gvk.Version, gvk.Kind, err))
	}
	obj.GetObjectKind().SetGroupVersionKind(gvk)
	return strictErrs, nil
}

func applyFieldValidation(strictErrs []error, directive string, gvk schema.GroupVersionKind) ([]string, error) {
	if len(strictErrs) == 0 {
		return nil, nil
	}
	switch directive {
	case metav1.FieldValidationIgnore:
		return nil, nil
	case metav1.FieldValidationStrict:
		msgs := make([]string, len(strictErrs))
		for i, e := range strictErrs {
			msgs[i] = e.Error()
		}
		return nil, apierrors.NewBadRequest(fmt.Sprintf("%s in version %q cannot be handled as a %s: strict decoding error: %s",
			gvk.Kind, gvk.Version, gvk.Kind, strings.Join(msgs, ", ")))
	case "", metav1.FieldValidationWarn:
		warnings := make([]string, len(strictErrs))
		for i, e := range strictErrs {
			warnings[i] = e.Error()
		}
		return warnings, nil
	default:
		return nil, apierrors.NewBadRequest(fmt.Sprintf("fieldValidation must be one of %q, %q or %q, not %q",
			metav1.FieldValidationIgnore, metav1.FieldValidationWarn, metav1.FieldValidationStrict, directive))
	}
}

// toJSON accepts JSON and YAML bodies.
func toJSON(body []byte, contentType string) ([]byte, error) {
	mt := "application/json"
	if contentType != "" {
		parsed, _, err := mime.ParseMediaType(contentType)
		if err != nil {
			return nil, fmt.Errorf("invalid Content-Type %q: %w", contentType, err)
		}
		mt = parsed
	}
	switch mt {
	case "application/json", "application/merge-patch+json", "application/json-patch+json", "application/strategic-merge-patch+json":
		return body, nil
	case "application/yaml", "application/apply-patch+yaml":
		data, err := yaml.YAMLToJSON(body)
		if err != nil {
			return nil, fmt.Errorf("error converting YAML to JSON: %w", err)
		}
		return data, nil
	}
	return nil, unsupportedMediaType(mt)
}

// unmarshalLoose decodes option bodies (DeleteOptions) in JSON, YAML or
// protobuf, ignoring unknown fields as upstream does for them.
func unmarshalLoose(body []byte, contentType string, into runtime.Object) error {
	if strings.HasPrefix(contentType, protobufMediaType) {
		return decodeProtobuf(body, into, schema.GroupVersionKind{})
	}
	data, err := toJSON(body, contentType)
	if err != nil {
		return asBadRequest(err)
	}
	if err := json.Unmarshal(data, into); err != nil {
		return apierrors.NewBadRequest(fmt.Sprintf("decoding %T: %v", into, err))
	}
	return nil
}

// unsupportedMediaType is kube-apiserver's 415 answer.
func unsupportedMediaType(mediaType string) error {
	return &apierrors.StatusError{ErrStatus: metav1.Status{
		Status: metav1.StatusFailure, Code: http.StatusUnsupportedMediaType, Reason: metav1.StatusReasonUnsupportedMediaType,
		Message: fmt.Sprintf("the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json (got %s)", mediaType),
	}}
}

// asBadRequest keeps API errors as they are and makes others a 400.
func asBadRequest(err error) error {
	if _, ok := err.(apierrors.APIStatus); ok {
		return err
	}
	return apierrors.NewBadRequest(err.Error())
}
