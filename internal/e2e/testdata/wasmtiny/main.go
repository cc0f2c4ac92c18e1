//go:build wasip1

// Command wasmtiny is the smallest HTTP responder a wasm pod can run, for
// density measurements: built with GOOS=wasip1 GOARCH=wasm, it accepts on
// the preopened listener at fd 3 (its first containerPort) and answers
// every connection with a fixed HTTP/1.0 "ok" and closes it. It uses the
// syscall package only: without net, net/http and fmt the Go runtime's
// heap and the module's code stay a fraction of a net/http guest's, which
// is what lets hundreds of such pods fit on one node.
package main

import "syscall"

const listenerFD = 3

var response = []byte("HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n")

func main() {
	// The listener is handed over non-blocking, as Go's netpoller wants
	// it; this guest has nothing else to do, so it blocks in accept and
	// the host waits for it without spinning.
	if err := syscall.SetNonblock(listenerFD, false); err != nil {
		fail("no listener at fd 3: ", err)
	}
	buf := make([]byte, 4096)
	for {
		fd, _, err := syscall.Accept(listenerFD)
		switch err {
		case nil:
			serve(fd, buf)
		case syscall.EINTR, syscall.ECONNABORTED, syscall.EAGAIN:
		default:
			fail("accept: ", err)
		}
	}
}

// serve reads the request head (or as much as the client sends before
// closing), answers and closes.
func serve(fd int, buf []byte) {
	defer syscall.Close(fd)
	n := 0
	for n < len(buf) && !headEnds(buf[:n]) {
		m, err := syscall.Read(fd, buf[n:])
		if err == syscall.EINTR || err == syscall.EAGAIN {
			continue
		}
		if err != nil || m == 0 {
			break
		}
		n += m
	}
	for out := response; len(out) > 0; {
		m, err := syscall.Write(fd, out)
		if err == syscall.EINTR || err == syscall.EAGAIN {
			continue
		}
		if err != nil {
			return
		}
		out = out[m:]
	}
}

// headEnds says whether b holds the blank line that ends a request head.
func headEnds(b []byte) bool {
	for i := 3; i < len(b); i++ {
		if b[i-3] == '\r' && b[i-2] == '\n' && b[i-1] == '\r' && b[i] == '\n' {
			return true
		}
	}
	return false
}

func fail(what string, err error) {
	syscall.Write(2, []byte(what+err.Error()+"\n"))
	syscall.Exit(1)
}
