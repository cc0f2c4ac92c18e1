package wasmhost

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// Client talks to one sandbox process over its Unix socket. It is safe
// for concurrent use.
type Client struct {
	socket string
	pid    int
	http   *http.Client
}

// ExecOptions are the streams of an Exec; nil streams are empty or
// discarded.
type ExecOptions struct {
	Argv   []string
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
}

// Dial connects to the sandbox process serving socketPath and fails unless
// it answers.
func Dial(ctx context.Context, socketPath string) (*Client, error) {
	c := &Client{socket: socketPath}
	c.http = &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return c.dial(ctx)
		},
		MaxIdleConns:    4,
		IdleConnTimeout: time.Minute,
	}}
	var p Ping
	if err := c.do(ctx, http.MethodGet, PathPing, nil, &p); err != nil {
		c.Close()
		return nil, fmt.Errorf("wasm sandbox at %s: %w", socketPath, err)
	}
	c.pid = p.Pid
	return c, nil
}

func (c *Client) dial(ctx context.Context) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, "unix", c.socket)
}

// Pid is the sandbox process's.
func (c *Client) Pid() int { return c.pid }

// Close releases the client's idle connections; the sandbox process and
// its containers go on.
func (c *Client) Close() { c.http.CloseIdleConnections() }

// Create creates a container; its module is compiled (or loaded from the
// compilation cache) before Create returns.
func (c *Client) Create(ctx context.Context, spec ContainerSpec) error {
	return c.do(ctx, http.MethodPost, PathContainers, spec, nil)
}

// Start runs the container's module; a Start of an exited container runs a
// new instance in its place.
func (c *Client) Start(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodPost, ContainerPath(id, "start"), nil, nil)
}

// State reports the container's state; an unknown id is ErrNotFound.
func (c *Client) State(ctx context.Context, id string) (State, error) {
	var s State
	err := c.do(ctx, http.MethodGet, ContainerPath(id, ""), nil, &s)
	return s, err
}

// Wait blocks until the container is exited, or ctx ends.
func (c *Client) Wait(ctx context.Context, id string) (State, error) {
	var s State
	err := c.do(ctx, http.MethodGet, ContainerPath(id, "wait"), nil, &s)
	return s, err
}

// Stop closes the container's listeners and its stdin, gives the guest
// grace to end by itself, then kills it. It returns once the container is
// exited.
func (c *Client) Stop(ctx context.Context, id string, grace time.Duration) error {
	return c.do(ctx, http.MethodPost, ContainerPath(id, "stop"), StopRequest{GraceMillis: grace.Milliseconds()}, nil)
}

// Remove forgets a container that is not running.
func (c *Client) Remove(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodDelete, ContainerPath(id, ""), nil, nil)
}

// List reports every container of the sandbox.
func (c *Client) List(ctx context.Context) ([]State, error) {
	var l []State
	err := c.do(ctx, http.MethodGet, PathContainers, nil, &l)
	return l, err
}

// Shutdown asks the process to exit once no container runs; it refuses
// new containers from then on.
// Enter makes a sandbox started ahead of its pod, with no container yet,
// the pod's: at normal priority, and in the network namespace pinned at
// netns unless netns is "".
func (c *Client) Enter(ctx context.Context, netns string) error {
	return c.do(ctx, http.MethodPost, PathEnter, EnterRequest{Netns: netns}, nil)
}

func (c *Client) Shutdown(ctx context.Context) error {
	return c.do(ctx, http.MethodPost, PathShutdown, nil, nil)
}

// do sends a JSON request and decodes a JSON answer into out (if not nil).
func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("encode request: %w", err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://wasm-sandbox"+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		return errorFromResponse(resp)
	}
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("decode answer to %s %s: %w", method, path, err)
	}
	return nil
}

// Exec runs a new instance of the container's module with argv, the
// container's environment and preopens and no listeners, streaming its
// standard streams, and returns its exit code. Ending ctx kills it.
func (c *Client) Exec(ctx context.Context, id string, o ExecOptions) (int, error) {
	conn, err := c.dial(ctx)
	if err != nil {
		return -1, err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()

	b, err := json.Marshal(ExecRequest{Argv: o.Argv, Stdin: o.Stdin != nil})
	if err != nil {
		return -1, err
	}
	req, err := http.NewRequest(http.MethodPost, "http://wasm-sandbox"+ContainerPath(id, "exec"), bytes.NewReader(b))
	if err != nil {
		return -1, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", ExecUpgrade)
	if err := req.Write(conn); err != nil {
		return -1, c.ctxErr(ctx, fmt.Errorf("send exec: %w", err))
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		return -1, c.ctxErr(ctx, fmt.Errorf("exec answer: %w", err))
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		defer resp.Body.Close()
		return -1, errorFromResponse(resp)
	}

	fw := NewFrameWriter(conn)
	if o.Stdin != nil {
		go func() {
			buf := make([]byte, 32<<10)
			for {
				n, err := o.Stdin.Read(buf)
				if n > 0 && fw.WriteFrame(FrameStdin, buf[:n]) != nil {
					return
				}
				if err != nil {
					_ = fw.WriteFrame(FrameStdinClose, nil)
					return
				}
			}
		}()
	}
	for {
		typ, payload, err := ReadFrame(br)
		if err != nil {
			return -1, c.ctxErr(ctx, fmt.Errorf("exec stream ended before the exit: %w", err))
		}
		switch typ {
		case FrameStdout:
			if o.Stdout != nil {
				_, _ = o.Stdout.Write(payload)
			}
		case FrameStderr:
			if o.Stderr != nil {
				_, _ = o.Stderr.Write(payload)
			}
		case FrameExit:
			var e ExecExit
			if err := json.Unmarshal(payload, &e); err != nil {
				return -1, fmt.Errorf("exec exit frame: %w", err)
			}
			if e.Error != "" {
				return e.ExitCode, errors.New(e.Error)
			}
			return e.ExitCode, nil
		}
	}
}

// ctxErr prefers ctx's error to the broken connection it caused.
func (c *Client) ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%w (%w)", ctx.Err(), err)
	}
	return err
}
