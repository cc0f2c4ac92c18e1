// Command volserver serves net/http on the listener at fd 3 and keeps files
// in its preopened directory /data: GET /files/{name} reads one, PUT
// /files/{name} writes the body; GET /quit exits 0. It is built with
// GOOS=wasip1 by the tests of the wasm runtime's descriptor layout.
package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path"
)

func main() {
	l, err := net.FileListener(os.NewFile(3, "listener"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "listener:", err)
		os.Exit(1)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /files/{name}", func(w http.ResponseWriter, r *http.Request) {
		data, err := os.ReadFile(path.Join("/data", r.PathValue("name")))
		if err != nil {
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		}
		w.Write(data)
	})
	mux.HandleFunc("PUT /files/{name}", func(w http.ResponseWriter, r *http.Request) {
		data, err := io.ReadAll(r.Body)
		if err == nil {
			err = os.WriteFile(path.Join("/data", r.PathValue("name")), data, 0o644)
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		fmt.Fprintf(w, "wrote %d bytes", len(data))
	})
	mux.HandleFunc("GET /quit", func(w http.ResponseWriter, r *http.Request) {
		// A length, not chunks: the client must not wait for more.
		w.Header().Set("Content-Length", "3")
		fmt.Fprint(w, "bye")
		w.(http.Flusher).Flush()
		os.Exit(0)
	})
	if err := http.Serve(l, mux); err != nil {
		fmt.Fprintln(os.Stderr, "serve:", err)
		os.Exit(1)
	}
}
