// Command app is the sandbox tests' guest, built with GOOS=wasip1; its
// first argument is the mode:
//
//	serve      net/http on the listener at fd 3 ("hello from wasm"); exits 0
//	           once the listener is closed
//	sleep      sleeps forever, whatever happens to its listeners
//	exit N     prints a line on stdout and one on stderr, exits N
//	alloc      allocates memory without bound
//	cat ARGS   prints its argv, copies stdin to stdout, exits 3
package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: app serve|sleep|exit N|alloc|cat ARGS")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "serve":
		l, err := net.FileListener(os.NewFile(3, "listener"))
		if err != nil {
			fmt.Fprintln(os.Stderr, "listener:", err)
			os.Exit(1)
		}
		fmt.Println("serving on fd 3")
		err = http.Serve(l, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprint(w, "hello from wasm")
		}))
		fmt.Fprintln(os.Stderr, "listener closed:", err)
		os.Exit(0)
	case "sleep":
		fmt.Println("sleeping")
		for {
			time.Sleep(time.Hour)
		}
	case "exit":
		n, _ := strconv.Atoi(os.Args[2])
		fmt.Println("to stdout")
		fmt.Fprintln(os.Stderr, "to stderr")
		os.Exit(n)
	case "alloc":
		var kept [][]byte
		for i := 0; ; i++ {
			b := make([]byte, 1<<20)
			for j := range b {
				b[j] = byte(i + j)
			}
			kept = append(kept, b)
		}
	case "cat":
		fmt.Printf("argv=%v\n", os.Args)
		io.Copy(os.Stdout, os.Stdin)
		os.Exit(3)
	}
	fmt.Fprintf(os.Stderr, "unknown mode %q\n", os.Args[1])
	os.Exit(2)
}
