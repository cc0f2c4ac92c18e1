package server

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/wasmkube/wasmkube/runtime/agent/logs"
	"github.com/wasmkube/wasmkube/runtime/oci"
)

// containerLogs serves GET /containerLogs/{ns}/{pod}/{container} with the
// query of PodLogOptions, as the kubelet does.
func (s *Server) containerLogs(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	opts, previous, err := logOptions(q, time.Now())
	if err != nil {
		http.Error(w, err.Error(), http.StatusUnprocessableEntity)
		return
	}
	ref, ok := s.container(w, r, previous)
	if !ok {
		return
	}
	running := func(ctx context.Context) bool {
		st, err := s.cfg.Runtime.Status(ctx, ref.ID)
		return err == nil && st.Status == oci.StatusRunning
	}
	w.Header().Set("Content-Type", "text/plain")
	fw := &flushWriter{w: w}
	if f, ok := w.(http.Flusher); ok {
		fw.f = f
	}
	if err := logs.Read(r.Context(), ref.LogPath, opts, running, fw); err != nil {
		if r.Context().Err() != nil {
			return // the client left
		}
		if !fw.wrote {
			http.Error(w, fmt.Sprintf("failed to get logs for container %q in pod %q: %v", ref.container, ref.pod, err), http.StatusBadRequest)
			return
		}
		s.cfg.Log.Info("server: log stream ended", "pod", ref.ns+"/"+ref.pod, "container", ref.container, "err", err)
	}
}

// logOptions parses the query of PodLogOptions.
func logOptions(q map[string][]string, now time.Time) (logs.Options, bool, error) {
	get := func(k string) string {
		if v := q[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	opts := logs.Options{TailLines: -1}
	var err error
	boolOpt := func(k string, dst *bool) {
		if err == nil {
			if *dst, err = parseBool(get(k)); err != nil {
				err = fmt.Errorf("%s: %w", k, err)
			}
		}
	}
	var previous bool
	boolOpt("follow", &opts.Follow)
	boolOpt("previous", &previous)
	boolOpt("timestamps", &opts.Timestamps)
	if err != nil {
		return opts, false, err
	}
	intOpt := func(k string) (int64, bool, error) {
		v := get(k)
		if v == "" {
			return 0, false, nil
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return 0, false, fmt.Errorf("%s: must be a non-negative integer: %q", k, v)
		}
		return n, true, nil
	}
	if n, ok, err := intOpt("tailLines"); err != nil {
		return opts, false, err
	} else if ok {
		opts.TailLines = n
	}
	if n, ok, err := intOpt("limitBytes"); err != nil {
		return opts, false, err
	} else if ok {
		if n == 0 {
			return opts, false, fmt.Errorf("limitBytes: must be greater than 0")
		}
		opts.LimitBytes = n
	}
	secs, hasSecs, err := intOpt("sinceSeconds")
	if err != nil {
		return opts, false, err
	}
	if hasSecs {
		if secs == 0 {
			return opts, false, fmt.Errorf("sinceSeconds: must be greater than 0")
		}
		opts.Since = now.Add(-time.Duration(secs) * time.Second)
	}
	if v := get("sinceTime"); v != "" {
		if hasSecs {
			return opts, false, fmt.Errorf("at most one of sinceTime or sinceSeconds may be specified")
		}
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return opts, false, fmt.Errorf("sinceTime: %w", err)
		}
		opts.Since = t
	}
	return opts, previous, nil
}

// flushWriter sends every write at once, so a follower sees each line as
// it is written.
type flushWriter struct {
	w     http.ResponseWriter
	f     http.Flusher
	wrote bool
}

func (fw *flushWriter) Write(p []byte) (int, error) {
	fw.wrote = true
	n, err := fw.w.Write(p)
	if fw.f != nil {
		fw.f.Flush()
	}
	return n, err
}
