// Command tool is the test workload for runtime/oci: each mode exercises one
// thing the runtime must report (exit codes, both output streams, SIGTERM
// handling, the OOM killer).
package main

import (
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: tool args|exit N|ignore-term|oom|env NAME")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "args":
		fmt.Println("args " + strings.Join(os.Args[2:], " "))
	case "env":
		fmt.Println(os.Args[2] + "=" + os.Getenv(os.Args[2]))
	case "exit":
		code, _ := strconv.Atoi(os.Args[2])
		fmt.Println("to stdout")
		fmt.Fprintln(os.Stderr, "to stderr")
		fmt.Print("no newline")
		os.Exit(code)
	case "check":
		// One line per probe, so a test can check a whole security and
		// volume setup with one container.
		for _, path := range os.Args[2:] {
			err := os.WriteFile(path, []byte("x"), 0o644)
			fmt.Printf("write %s: %v\n", path, err)
		}
		fmt.Printf("uid %d gid %d\n", os.Getuid(), os.Getgid())
		status, _ := os.ReadFile("/proc/self/status")
		for _, line := range strings.Split(string(status), "\n") {
			if strings.HasPrefix(line, "CapBnd:") || strings.HasPrefix(line, "NoNewPrivs:") {
				fmt.Println(strings.Join(strings.Fields(line), " "))
			}
		}
		host, _ := os.Hostname()
		fmt.Println("hostname " + host)
	case "tick":
		for i := 0; ; i++ {
			fmt.Printf("tick %d\n", i)
			time.Sleep(20 * time.Millisecond)
		}
	case "ignore-term":
		signal.Ignore(syscall.SIGTERM)
		fmt.Println("ignoring SIGTERM")
		for {
			time.Sleep(time.Hour)
		}
	case "oom":
		var keep [][]byte
		for {
			b := make([]byte, 1<<20)
			for i := range b {
				b[i] = 1
			}
			keep = append(keep, b)
		}
	default:
		fmt.Fprintln(os.Stderr, "unknown mode", os.Args[1])
		os.Exit(2)
	}
}
