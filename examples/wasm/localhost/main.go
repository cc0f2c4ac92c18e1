//go:build wasip1

// Command localhost is the wasm container of examples/wasm-localhost.yaml,
// a WebAssembly (WASI preview 1) module built with GOOS=wasip1
// GOARCH=wasm. It shows that a wasm container and the OCI containers of
// its pod share one network namespace: it serves HTTP on the listener
// preopened at fd 3 (its containerPort, which the OCI containers reach at
// localhost), and each GET / fetches UPSTREAM_URL (default
// http://localhost:80/, the OCI web server of the same pod) through the
// sandbox's sockets and answers with what it got, naming the host the
// client asked for (a wasip1 listener does not know its own address):
//
//	wasm container (asked as localhost:8080) fetched http://localhost:80/:
//	<the upstream's body>
package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/wasmkube/wasmkube/sandbox/wasinet"
)

func main() {
	upstream := os.Getenv("UPSTREAM_URL")
	if upstream == "" {
		upstream = "http://localhost:80/"
	}
	l, err := net.FileListener(os.NewFile(3, "listener"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "localhost: no listener at fd 3 (declare a containerPort):", err)
		os.Exit(1)
	}
	client := wasinet.NewClient(10 * time.Second)
	fmt.Printf("localhost: serving on fd 3, fetching %s for each GET /\n", upstream)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		resp, err := client.Get(upstream)
		if err != nil {
			fmt.Fprintf(os.Stderr, "localhost: GET %s: %v\n", upstream, err)
			http.Error(w, fmt.Sprintf("wasm container (asked as %s) could not fetch %s: %v", r.Host, upstream, err), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if err != nil || resp.StatusCode != http.StatusOK {
			http.Error(w, fmt.Sprintf("wasm container (asked as %s): %s answered %s (%v)", r.Host, upstream, resp.Status, err), http.StatusBadGateway)
			return
		}
		fmt.Printf("localhost: %s asked, %s answered %d bytes\n", r.RemoteAddr, upstream, len(body))
		fmt.Fprintf(w, "wasm container (asked as %s) fetched %s:\n%s", r.Host, upstream, body)
	})
	if err := http.Serve(l, mux); err != nil {
		fmt.Fprintln(os.Stderr, "localhost: serve:", err)
		os.Exit(1)
	}
}
