// Command netclient dials out through sandbox/wasinet; it is built with
// GOOS=wasip1 by the wasisock tests, which pick what it does by argument
// and read what it prints.
//
//	netclient tcp ADDR MSG        echo MSG through a TCP server, print the reply
//	netclient http URL N          GET URL N times on one client, print each body
//	netclient resolve NAME        print NAME's addresses, one a line
//	netclient udp ADDR MSG        echo MSG through a UDP server, print the reply
//	netclient refused ADDR        dial ADDR and print whether it was ECONNREFUSED
//	netclient compat HOST PORT MSG  as tcp, with dispatchrun/net's calling style
//	netclient proxy UPSTREAM      serve on fd 3, answering each GET /p/X with
//	                              UPSTREAM's answer to GET /X
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"syscall"
	"time"

	"github.com/wasmkube/wasmkube/sandbox/wasinet"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "netclient:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) < 2 {
		return errors.New("usage: netclient MODE ARGS")
	}
	switch args[0] {
	case "tcp", "udp":
		return echo(args[0], args[1], args[2])
	case "http":
		n, err := strconv.Atoi(args[2])
		if err != nil {
			return err
		}
		hc := wasinet.NewClient(time.Minute)
		for i := 0; i < n; i++ {
			body, err := get(hc, fmt.Sprintf("%s/%d", args[1], i))
			if err != nil {
				return err
			}
			fmt.Println(body)
		}
		return nil
	case "resolve":
		addrs, err := wasinet.LookupNetIP(context.Background(), "ip", args[1])
		if err != nil {
			return err
		}
		for _, a := range addrs {
			fmt.Println(a)
		}
		return nil
	case "refused":
		_, err := wasinet.Dial("tcp", args[1])
		fmt.Printf("refused=%v err=%v\n", errors.Is(err, syscall.ECONNREFUSED), err)
		return nil
	case "proxy":
		return proxy(args[1])
	case "compat":
		return compat(args[1], args[2], args[3])
	}
	return fmt.Errorf("unknown mode %q", args[0])
}

func echo(network, addr, msg string) error {
	c, err := wasinet.Dial(network, addr)
	if err != nil {
		return err
	}
	defer c.Close()
	fmt.Printf("local=%s remote=%s\n", c.LocalAddr(), c.RemoteAddr())
	if err := c.SetDeadline(time.Now().Add(time.Minute)); err != nil {
		return err
	}
	if _, err := io.WriteString(c, msg); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(c, buf); err != nil {
		return fmt.Errorf("read: %w", err)
	}
	fmt.Printf("reply=%s\n", buf)
	return nil
}

func get(hc *http.Client, url string) (string, error) {
	resp, err := hc.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return string(b), nil
}

func proxy(upstream string) error {
	l, err := net.FileListener(os.NewFile(3, "listener"))
	if err != nil {
		return err
	}
	hc := wasinet.NewClient(time.Minute)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /p/{x}", func(w http.ResponseWriter, r *http.Request) {
		body, err := get(hc, upstream+"/"+r.PathValue("x"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		fmt.Fprintf(w, "via guest: %s", body)
	})
	return http.Serve(l, mux)
}
