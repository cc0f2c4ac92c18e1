//go:build wasip1

// Command collector is the log collection server of
// examples/wasm-log-collection.yaml, a WebAssembly (WASI preview 1) module
// built with GOOS=wasip1 GOARCH=wasm. It serves HTTP on the listener
// preopened at fd 3 (its pod's first containerPort) and prints every log
// line it receives to stdout, so that `kubectl logs` of its pod is the
// cluster's central log:
//
//	POST /logs   a body of JSON lines {"source":..,"file":..,"line":..},
//	             as the logshipper sidecar sends them; each is printed as
//	             "<source> <file>: <line>"
//	GET  /healthz  answers ok
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
)

// entry is one shipped log line.
type entry struct {
	Source string `json:"source"`
	File   string `json:"file"`
	Line   string `json:"line"`
}

func main() {
	l, err := net.FileListener(os.NewFile(3, "listener"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "collector: no listener at fd 3 (declare a containerPort):", err)
		os.Exit(1)
	}
	fmt.Println("collector: serving on fd 3")
	// Entries of concurrent requests are printed whole, one batch at a
	// time, so that lines of two shippers never interleave mid-line.
	var mu sync.Mutex
	mux := http.NewServeMux()
	mux.HandleFunc("POST /logs", func(w http.ResponseWriter, r *http.Request) {
		var batch []entry
		sc := bufio.NewScanner(r.Body)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			if strings.TrimSpace(sc.Text()) == "" {
				continue
			}
			var e entry
			if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
				http.Error(w, fmt.Sprintf("line %d: %v", len(batch)+1, err), http.StatusBadRequest)
				return
			}
			batch = append(batch, e)
		}
		if err := sc.Err(); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		mu.Lock()
		out := bufio.NewWriter(os.Stdout)
		for _, e := range batch {
			fmt.Fprintf(out, "%s %s: %s\n", e.Source, e.File, e.Line)
		}
		err := out.Flush()
		mu.Unlock()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		fmt.Fprintf(w, "%d lines\n", len(batch))
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	if err := http.Serve(l, mux); err != nil {
		fmt.Fprintln(os.Stderr, "collector: serve:", err)
		os.Exit(1)
	}
}
