// Command rawhttp is the smallest HTTP server the sandbox measurements
// run: it accepts on the listener at fd 3 with raw WASI calls (no net/http,
// no netpoller) and answers every request with "hello" and a close.
package main

import (
	"bytes"
	"syscall"
)

const answer = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello"

func main() {
	// The listener is non-blocking; a blocking accept waits in the host.
	if err := syscall.SetNonblock(3, false); err != nil {
		println("setnonblock:", err.Error())
		syscall.Exit(1)
	}
	buf := make([]byte, 4096)
	for {
		fd, _, err := syscall.Accept(3)
		if err != nil {
			println("accept:", err.Error())
			syscall.Exit(0)
		}
		n := 0
		for n < len(buf) {
			m, err := syscall.Read(fd, buf[n:])
			if err != nil || m == 0 {
				break
			}
			n += m
			if bytes.Contains(buf[:n], []byte("\r\n\r\n")) {
				syscall.Write(fd, []byte(answer))
				break
			}
		}
		syscall.Close(fd)
	}
}
