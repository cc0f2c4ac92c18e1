// Command hello is the smallest useful workload for node tests: a static HTTP
// server that answers every request with a fixed greeting and the host name,
// so a test can tell which container answered.
//
// With HELLO_ALLOC set to a size (bytes, or with a Ki, Mi or Gi suffix) it
// first allocates that much memory and writes to every page of it, so that
// the memory is really resident, then logs "hello: allocated N bytes" and
// serves as usual while holding it. Under a lower memory limit that makes the
// kernel's OOM killer end it, which is how node tests provoke OOMKilled.
//
// With HELLO_HEALTH_FILE set to a path, /healthz answers 200 while that file
// exists and 503 while it does not, so a test flips an httpGet probe by
// creating and removing the file.
package main

import (
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
)

func main() {
	// `hello get URL` is a client: it prints the body, or the error and
	// exits 1, so that tests can fetch from inside a pod.
	if len(os.Args) == 3 && os.Args[1] == "get" {
		os.Exit(get(os.Args[2]))
	}
	var held []byte
	if size := os.Getenv("HELLO_ALLOC"); size != "" {
		n, err := parseSize(size)
		if err != nil {
			log.Fatalf("hello: HELLO_ALLOC=%q: %v", size, err)
		}
		held = touch(n)
		log.Printf("hello: allocated %d bytes", len(held))
	}
	addr := os.Getenv("HELLO_ADDR")
	if addr == "" {
		addr = ":8080"
	}
	host, _ := os.Hostname()
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello from %s\n", host)
	})
	// The client's address as this server sees it: whether a Service kept
	// the source or masqueraded it.
	http.HandleFunc("/remote", func(w http.ResponseWriter, r *http.Request) {
		ip, _, _ := net.SplitHostPort(r.RemoteAddr)
		fmt.Fprintln(w, ip)
	})
	if file := os.Getenv("HELLO_HEALTH_FILE"); file != "" {
		http.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
			if _, err := os.Stat(file); err != nil {
				http.Error(w, "unhealthy: "+err.Error(), http.StatusServiceUnavailable)
				return
			}
			fmt.Fprintln(w, "ok")
		})
	}
	log.Printf("hello: listening on %s", addr)
	err := http.ListenAndServe(addr, nil)
	runtime.KeepAlive(held)
	log.Fatal(err)
}

// touch allocates n bytes and writes one byte in every 4 KiB page, which is
// what makes the kernel back (and charge) each page.
func touch(n int64) []byte {
	b := make([]byte, n)
	for i := int64(0); i < n; i += 4096 {
		b[i] = 1
	}
	return b
}

// parseSize reads "1048576", "512Ki", "200Mi" or "1Gi".
func parseSize(s string) (int64, error) {
	mult := int64(1)
	for suffix, m := range map[string]int64{"Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30} {
		if rest, ok := strings.CutSuffix(s, suffix); ok {
			s, mult = rest, m
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("not a size: want a non-negative integer with an optional Ki, Mi or Gi suffix")
	}
	return n * mult, nil
}

// get fetches url on a new connection and prints the body.
func get(url string) int {
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Get(url)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer resp.Body.Close()
	if _, err := io.Copy(os.Stdout, resp.Body); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintln(os.Stderr, resp.Status)
		return 1
	}
	return 0
}
