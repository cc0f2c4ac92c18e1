package apiserver

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/yaml"
)

// minWatchTimeout is kube-apiserver's --min-request-timeout: a watch without
// timeoutSeconds ends after a random time between it and twice it, so that
// clients reconnect and spread over the servers.
const minWatchTimeout = 30 * time.Minute

// watch streams events as a chunked sequence of WatchEvent objects, each
// flushed at once.
func (h *request) watch() {
	opts, err := h.listOptions()
	if err != nil {
		h.fail(err)
		return
	}
	timeout := minWatchTimeout + time.Duration(rand.Int64N(int64(minWatchTimeout)))
	if opts.TimeoutSeconds != nil {
		timeout = time.Duration(*opts.TimeoutSeconds) * time.Second
	}
	ctx, cancel := context.WithTimeout(h.r.Context(), timeout)
	defer cancel()
	w, err := h.store.Watch(ctx, h.info.Namespace, opts)
	if err != nil {
		h.fail(err)
		return
	}
	defer w.Stop()

	flusher, _ := h.w.(http.Flusher)
	contentType := "application/json"
	if h.out.yaml {
		contentType = "application/yaml"
	}
	h.w.Header().Set("Content-Type", contentType)
	h.w.Header().Set("Transfer-Encoding", "chunked")
	h.w.WriteHeader(http.StatusOK)
	if flusher != nil {
		flusher.Flush()
	}
	first := true
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-w.ResultChan():
			if !ok {
				return
			}
			data, err := h.encodeEvent(ev, first)
			if err != nil {
				data, _ = json.Marshal(&metav1.WatchEvent{Type: string(watch.Error), Object: runtime.RawExtension{Raw: mustJSON(statusFor(err))}})
			}
			if ev.Type != watch.Bookmark {
				first = false
			}
			if _, err := h.w.Write(data); err != nil {
				return
			}
			if flusher != nil {
				flusher.Flush()
			}
		}
	}
}

// encodeEvent encodes one event in the negotiated form. Only the first table
// event carries column definitions, as kube-apiserver sends them.
func (h *request) encodeEvent(ev watch.Event, first bool) ([]byte, error) {
	obj := ev.Object
	if ev.Type == watch.Error {
		if st, ok := obj.(*metav1.Status); ok {
			st.Kind, st.APIVersion = "Status", "v1"
		}
	} else {
		var err error
		switch {
		case h.out.form == formTable && ev.Type == watch.Bookmark:
			obj = bookmarkTable(obj)
		case h.out.form == formTable:
			var t *metav1.Table
			if t, err = h.toTable(obj); err == nil && !first {
				t.ColumnDefinitions = nil
			}
			obj = t
		case h.out.form == formMetadata:
			obj, err = partialMetadata(obj)
		}
		if err != nil {
			return nil, err
		}
	}
	raw, err := json.Marshal(obj)
	if err != nil {
		return nil, err
	}
	data, err := json.Marshal(&metav1.WatchEvent{Type: string(ev.Type), Object: runtime.RawExtension{Raw: raw}})
	if err != nil {
		return nil, err
	}
	if h.out.yaml {
		if data, err = yaml.JSONToYAML(data); err != nil {
			return nil, err
		}
		return append([]byte("---\n"), data...), nil
	}
	return append(data, '\n'), nil
}

func bookmarkTable(obj runtime.Object) *metav1.Table {
	t := &metav1.Table{TypeMeta: tableTypeMeta}
	if m, err := meta.Accessor(obj); err == nil {
		t.ResourceVersion = m.GetResourceVersion()
	}
	return t
}

func mustJSON(v any) []byte {
	data, _ := json.Marshal(v)
	return data
}
