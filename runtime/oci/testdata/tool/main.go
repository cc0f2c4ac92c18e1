// Command tool is the test workload for runtime/oci: each mode exercises one
// thing the runtime must report (exit codes, both output streams, SIGTERM
// handling, the OOM killer).
package main

import (
	"bufio"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"
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
	case "stdin":
		// Echoes stdin's lines; "size" asks for the terminal's size. At
		// the end of stdin it says so, then exits with "stdin exit" or
		// stays.
		fmt.Println(terminalSize())
		sc := bufio.NewScanner(os.Stdin)
		for sc.Scan() {
			if sc.Text() == "size" {
				fmt.Println(terminalSize())
				continue
			}
			fmt.Println("got:" + sc.Text())
		}
		fmt.Println("stdin-closed")
		if len(os.Args) > 2 && os.Args[2] == "exit" {
			return
		}
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

// terminalSize reports stdout's terminal size, or that it is no terminal.
func terminalSize() string {
	var ws struct{ row, col, x, y uint16 }
	if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, 1, syscall.TIOCGWINSZ, uintptr(unsafe.Pointer(&ws))); errno != 0 {
		return "no-tty"
	}
	return fmt.Sprintf("tty %dx%d", ws.col, ws.row)
}
