package apiserver

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// outputForm is how a response body is shaped, from the Accept header.
type outputForm int

const (
	formObject   outputForm = iota // the object itself
	formTable                      // meta.k8s.io Table, for kubectl get
	formMetadata                   // PartialObjectMetadata(List)
)

// negotiated is the outcome of reading the Accept header.
type negotiated struct {
	form outputForm
	yaml bool
}

// negotiate picks the first acceptable representation, as kube-apiserver
// does: Table and PartialObjectMetadata when asked for by as=/g=/v=, YAML or
// JSON otherwise. Protobuf is not served; clients that also accept JSON get
// JSON, others a 406.
func negotiate(r *http.Request) (negotiated, error) {
	accept := r.Header.Get("Accept")
	if accept == "" {
		return negotiated{}, nil
	}
	for _, clause := range strings.Split(accept, ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(clause))
		if err != nil {
			continue
		}
		isYAML := mt == "application/yaml"
		if mt != "application/json" && !isYAML && mt != "*/*" && mt != "application/*" {
			continue
		}
		switch params["as"] {
		case "":
			return negotiated{yaml: isYAML}, nil
		case "Table":
			if params["g"] == "meta.k8s.io" && (params["v"] == "v1" || params["v"] == "v1beta1") {
				return negotiated{form: formTable, yaml: isYAML}, nil
			}
		case "PartialObjectMetadata", "PartialObjectMetadataList":
			if params["g"] == "meta.k8s.io" && (params["v"] == "v1" || params["v"] == "v1beta1") {
				return negotiated{form: formMetadata, yaml: isYAML}, nil
			}
		}
	}
	return negotiated{}, &apierrors.StatusError{ErrStatus: metav1.Status{
		Status: metav1.StatusFailure, Code: http.StatusNotAcceptable, Reason: metav1.StatusReasonNotAcceptable,
		Message: "only the following media types are accepted: application/json, application/yaml, application/json;as=Table;v=v1;g=meta.k8s.io",
	}}
}

// writeObject writes obj with the given status code in JSON or YAML.
func writeObject(w http.ResponseWriter, code int, obj any, asYAML bool) {
	data, err := json.Marshal(obj)
	if err != nil {
		writeError(w, apierrors.NewInternalError(fmt.Errorf("encoding response: %w", err)))
		return
	}
	contentType := "application/json"
	if asYAML {
		if data, err = yaml.JSONToYAML(data); err != nil {
			writeError(w, apierrors.NewInternalError(fmt.Errorf("encoding response as YAML: %w", err)))
			return
		}
		contentType = "application/yaml"
	}
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_, _ = w.Write(append(data, '\n'))
}

// statusFor turns any error into the Status kube-apiserver would answer.
func statusFor(err error) *metav1.Status {
	var apiStatus apierrors.APIStatus
	if errors.As(err, &apiStatus) {
		st := apiStatus.Status()
		return &st
	}
	st := apierrors.NewInternalError(err).ErrStatus
	return &st
}

// writeError answers with a Kubernetes Status object.
func writeError(w http.ResponseWriter, err error) {
	st := statusFor(err)
	st.Kind, st.APIVersion = "Status", "v1"
	if st.Code == 0 {
		st.Code = http.StatusInternalServerError
	}
	if st.Code >= 500 {
		slog.Error("request failed", "code", st.Code, "err", err)
	}
	writeObject(w, int(st.Code), st, false)
}

// successStatus is the body of a delete that has nothing else to return.
func successStatus() *metav1.Status {
	return &metav1.Status{TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}, Status: metav1.StatusSuccess}
}
