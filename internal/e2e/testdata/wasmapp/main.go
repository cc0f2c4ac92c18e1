// Command wasmapp is the wasm container of the end-to-end tests, built
// with GOOS=wasip1 GOARCH=wasm. Without arguments it serves HTTP on the
// preopened listener at fd 3 (its first containerPort); its first
// argument picks another part to play:
//
//	crash          writes to stderr and exits 3
//	alloc          allocates memory 1 MiB at a time until refused
//	echo WORDS...  prints the words
//	exit N         exits with code N
//	cat FILE       prints a file of a preopened volume, or stdin for -
//	write FILE S   writes S to a file of a preopened volume
package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
)

func main() {
	if len(os.Args) > 1 {
		os.Exit(play(os.Args[1], os.Args[2:]))
	}
	l, err := net.FileListener(os.NewFile(3, "listener"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "no listener at fd 3:", err)
		os.Exit(1)
	}
	// WASI has no host name (Go's os.Hostname says "wasip1"); the
	// runtime passes the pod's in HOSTNAME, as container runtimes do.
	host := os.Getenv("HOSTNAME")
	fmt.Println("serving on", l.Addr())
	mux := http.NewServeMux()
	mux.HandleFunc("GET /", func(w http.ResponseWriter, r *http.Request) {
		fmt.Printf("%s %s\n", r.Method, r.URL.Path)
		fmt.Fprintf(w, "hello from wasm %s\n", host)
	})
	mux.HandleFunc("GET /env/{name}", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, os.Getenv(r.PathValue("name")))
	})
	mux.HandleFunc("GET /file", func(w http.ResponseWriter, r *http.Request) {
		b, err := os.ReadFile(r.URL.Query().Get("path"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		}
		_, _ = w.Write(b)
	})
	if err := http.Serve(l, mux); err != nil {
		fmt.Fprintln(os.Stderr, "serve:", err)
		os.Exit(1)
	}
}

func play(part string, args []string) int {
	switch part {
	case "crash":
		fmt.Fprintln(os.Stderr, "crashing on purpose")
		return 3
	case "alloc":
		var kept [][]byte
		for {
			b := make([]byte, 1<<20)
			for i := range b {
				b[i] = byte(i)
			}
			kept = append(kept, b)
			fmt.Printf("allocated %d MiB\n", len(kept))
		}
	case "echo":
		fmt.Println(strings.Join(args, " "))
		return 0
	case "exit":
		if len(args) == 1 {
			if n, err := strconv.Atoi(args[0]); err == nil {
				return n
			}
		}
	case "cat":
		if len(args) == 1 && args[0] == "-" {
			_, _ = io.Copy(os.Stdout, os.Stdin)
			return 0
		}
		if len(args) == 1 {
			f, err := os.Open(args[0])
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
			defer f.Close()
			_, _ = io.Copy(os.Stdout, f)
			return 0
		}
	case "write":
		if len(args) == 2 {
			if err := os.WriteFile(args[0], []byte(args[1]), 0o644); err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
			return 0
		}
	}
	fmt.Fprintf(os.Stderr, "usage: wasmapp [crash | alloc | echo WORDS... | exit N | cat FILE | write FILE TEXT] (got %q)\n", append([]string{part}, args...))
	return 2
}
