package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/cri-streaming/pkg/streaming/portforward"
	"k8s.io/cri-streaming/pkg/streaming/remotecommand"
	utilexec "k8s.io/utils/exec"

	"github.com/wasmkube/wasmkube/runtime/oci"
	"github.com/wasmkube/wasmkube/sandbox/network"
)

// exec serves /exec/{ns}/{pod}/{container}?command=...&input=1&output=1...
func (s *Server) exec(w http.ResponseWriter, r *http.Request) {
	streamOpts, err := remotecommand.NewOptions(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	cmd := r.URL.Query()[corev1.ExecCommandParam]
	if len(cmd) == 0 {
		http.Error(w, "no command given", http.StatusBadRequest)
		return
	}
	ref, ok := s.container(w, r, false)
	if !ok {
		return
	}
	remotecommand.ServeExec(w, r, &executor{rt: s.cfg.Runtime, id: ref.ID}, ref.pod, string(ref.PodUID), ref.container, cmd,
		streamOpts, s.cfg.StreamIdleTimeout, remotecommand.DefaultStreamCreationTimeout, remotecommand.SupportedStreamingProtocols)
}

// executor runs one exec request's command in its container.
type executor struct {
	rt Runtime
	id string
}

func (e *executor) ExecInContainer(ctx context.Context, _, _, _ string, cmd []string, in io.Reader, out, errw io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize, _ time.Duration) error {
	cs := newClientStreams(in, out, errw, resize)
	defer cs.close()
	code, err := e.rt.Exec(ctx, e.id, oci.ExecOptions{Cmd: cmd, TTY: tty,
		Stdin: cs.stdin, Stdout: cs.stdout, Stderr: cs.stderr, Resize: cs.sizes})
	if err != nil {
		return err
	}
	if code != 0 {
		// The protocol reports a non-zero exit as an ExitError.
		return utilexec.CodeExitError{Err: fmt.Errorf("command terminated with non-zero exit code: %d", code), Code: code}
	}
	return nil
}

// attach serves /attach/{ns}/{pod}/{container}: the running container's
// output from now on, its stdin when it was started with one, and its
// terminal when it has one.
func (s *Server) attach(w http.ResponseWriter, r *http.Request) {
	streamOpts, err := remotecommand.NewOptions(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	ref, ok := s.container(w, r, false)
	if !ok {
		return
	}
	remotecommand.ServeAttach(w, r, &attacher{rt: s.cfg.Runtime, id: ref.ID}, ref.pod, string(ref.PodUID), ref.container,
		streamOpts, s.cfg.StreamIdleTimeout, remotecommand.DefaultStreamCreationTimeout, remotecommand.SupportedStreamingProtocols)
}

type attacher struct {
	rt Runtime
	id string
}

// AttachContainer ignores the client's tty flag: as with the CRI plugin,
// the container's own TTY decides (kubectl asks for one only when the pod
// spec has it).
func (a *attacher) AttachContainer(ctx context.Context, _, _, _ string, in io.Reader, out, errw io.WriteCloser, _ bool, resize <-chan remotecommand.TerminalSize) error {
	cs := newClientStreams(in, out, errw, resize)
	defer cs.close()
	return a.rt.AttachStreams(ctx, a.id, oci.AttachOptions{
		Stdin: cs.stdin, Stdout: cs.stdout, Stderr: cs.stderr, Resize: cs.sizes})
}

// relayResizes passes the protocol's terminal sizes on as the runtime's.
func relayResizes(in <-chan remotecommand.TerminalSize, out chan<- oci.TerminalSize, done <-chan struct{}) {
	for {
		select {
		case <-done:
			return
		case sz, ok := <-in:
			if !ok {
				return
			}
			select {
			case out <- oci.TerminalSize{Width: sz.Width, Height: sz.Height}:
			case <-done:
				return
			}
		}
	}
}

// portForward serves /portForward/{ns}/{pod}: each stream is a connection
// to 127.0.0.1:<port> inside the pod's network namespace.
func (s *Server) portForward(w http.ResponseWriter, r *http.Request) {
	ns, pod := r.PathValue("ns"), r.PathValue("pod")
	netns, uid, err := s.cfg.Pods.PodNetns(ns, pod)
	if err != nil {
		http.Error(w, err.Error(), lookupStatus(err))
		return
	}
	opts, err := portforward.NewV4Options(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	portforward.ServePortForward(w, r, &forwarder{netns: netns}, pod, string(uid), opts,
		s.cfg.StreamIdleTimeout, remotecommand.DefaultStreamCreationTimeout, portforward.SupportedProtocols)
}

// forwarder connects streams to a pod's ports.
type forwarder struct {
	netns string // "" for the host network
}

func (f *forwarder) PortForward(ctx context.Context, _, _ string, port int32, stream io.ReadWriteCloser) error {
	defer stream.Close()
	conn, err := f.dial(ctx, port)
	if err != nil {
		return err
	}
	defer conn.Close()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_, _ = io.Copy(conn, stream)
		// The client closed its side: tell the pod's server.
		if c, ok := conn.(interface{ CloseWrite() error }); ok {
			_ = c.CloseWrite()
		}
	}()
	_, err = io.Copy(stream, conn)
	// The pod's server closed: the other copy ends with the stream.
	stream.Close()
	wg.Wait()
	if err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("forward port %d: %w", port, err)
	}
	return nil
}

// dial connects to the port inside the pod's namespace. The socket is made
// on a goroutine of its own that enters the namespace; it stays in it once
// made and is used from any goroutine.
func (f *forwarder) dial(ctx context.Context, port int32) (net.Conn, error) {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(int(port)))
	var d net.Dialer
	if f.netns == "" {
		return d.DialContext(ctx, "tcp", addr)
	}
	type result struct {
		conn net.Conn
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		var conn net.Conn
		err := network.Do(f.netns, func() error {
			var err error
			conn, err = d.DialContext(ctx, "tcp", addr)
			return err
		})
		ch <- result{conn, err}
	}()
	res := <-ch
	if res.err != nil {
		if res.conn != nil {
			res.conn.Close()
		}
		return nil, fmt.Errorf("failed to connect to localhost:%d inside namespace of pod: %w", port, res.err)
	}
	return res.conn, nil
}

// clientStreams are a client's streams as the runtime takes them. Streams
// the client did not ask for stay nil interfaces (not typed nils), which
// the runtime leaves unconnected; its terminal sizes are relayed until
// close.
type clientStreams struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	sizes          <-chan oci.TerminalSize
	done           chan struct{}
}

func newClientStreams(in io.Reader, out, errw io.WriteCloser, resize <-chan remotecommand.TerminalSize) *clientStreams {
	cs := &clientStreams{done: make(chan struct{})}
	if in != nil {
		cs.stdin = in
	}
	if out != nil {
		cs.stdout = out
	}
	if errw != nil {
		cs.stderr = errw
	}
	if resize != nil {
		sizes := make(chan oci.TerminalSize)
		cs.sizes = sizes
		go relayResizes(resize, sizes, cs.done)
	}
	return cs
}

func (cs *clientStreams) close() { close(cs.done) }
