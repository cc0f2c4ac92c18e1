package wasmhost

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
)

// The protocol's requests. Every body is JSON; errors come back as an
// Error body with a 4xx or 5xx status.
//
//	GET    /v1/ping                  -> Ping
//	GET    /v1/containers            -> []State
//	POST   /v1/containers            ContainerSpec -> State
//	GET    /v1/containers/{id}       -> State
//	POST   /v1/containers/{id}/start -> State
//	GET    /v1/containers/{id}/wait  -> State, once the container is exited
//	POST   /v1/containers/{id}/stop  StopRequest -> State
//	DELETE /v1/containers/{id}
//	POST   /v1/containers/{id}/exec  ExecRequest, upgraded to frames
//	POST   /v1/enter                 EnterRequest
//	POST   /v1/shutdown
const (
	PathPing       = "/v1/ping"
	PathContainers = "/v1/containers"
	PathEnter      = "/v1/enter"
	PathShutdown   = "/v1/shutdown"
)

// EnterRequest makes a sandbox started ahead of its pod, which has no
// container yet, the pod's: at normal priority, in the pod's network
// namespace.
type EnterRequest struct {
	// Netns is the path of the namespace, as pinned; "" keeps the
	// process's (a pod of the host's network).
	Netns string `json:"netns,omitempty"`
}

// ExecUpgrade is the Upgrade token of an exec request: the server answers
// 101 Switching Protocols and both sides then speak frames.
const ExecUpgrade = "wasmkube-exec"

// Ping answers PathPing.
type Ping struct {
	Pid int `json:"pid"`
}

// StopRequest is the body of a stop.
type StopRequest struct {
	// GraceMillis is how long the guest has to end by itself once its
	// listeners are closed, before it is killed.
	GraceMillis int64 `json:"graceMillis"`
}

// ExecRequest is the body of an exec.
type ExecRequest struct {
	Argv []string `json:"argv"`
	// Stdin tells whether the client sends stdin frames; without it the
	// guest's stdin is empty.
	Stdin bool `json:"stdin,omitempty"`
}

// ExecExit is the payload of the exit frame.
type ExecExit struct {
	ExitCode int    `json:"exitCode"`
	Error    string `json:"error,omitempty"`
}

// Error is the body of a failed request.
type Error struct {
	Message string `json:"message"`
}

// ContainerPath is the path of container id's resource, with an optional
// action ("start", "wait", ...).
func ContainerPath(id, action string) string {
	p := PathContainers + "/" + id
	if action != "" {
		p += "/" + action
	}
	return p
}

// errorFromResponse turns a failed response into an error carrying the
// server's message; 404 wraps ErrNotFound.
func errorFromResponse(resp *http.Response) error {
	var e Error
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if json.Unmarshal(body, &e) != nil || e.Message == "" {
		e.Message = fmt.Sprintf("%s: %s", resp.Status, body)
	}
	if resp.StatusCode == http.StatusNotFound {
		return fmt.Errorf("%s: %w", e.Message, ErrNotFound)
	}
	return errors.New(e.Message)
}

// Frame types on an exec connection. Each frame is its type (one byte),
// its payload's length (four bytes, big endian) and the payload.
const (
	FrameStdin      byte = 0 // client to server
	FrameStdinClose byte = 1 // client to server, no payload
	FrameStdout     byte = 2 // server to client
	FrameStderr     byte = 3 // server to client
	FrameExit       byte = 4 // server to client, an ExecExit; the last frame
)

// maxFrame bounds a frame's payload, so that a corrupt length cannot make
// the reader allocate without limit.
const maxFrame = 1 << 20

// ReadFrame reads one frame.
func ReadFrame(r io.Reader) (typ byte, payload []byte, err error) {
	var head [5]byte
	if _, err := io.ReadFull(r, head[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(head[1:])
	if n > maxFrame {
		return 0, nil, fmt.Errorf("frame of %d bytes is over the limit of %d", n, maxFrame)
	}
	payload = make([]byte, n)
	if _, err := io.ReadFull(r, payload); err != nil {
		return 0, nil, fmt.Errorf("read frame payload: %w", err)
	}
	return head[0], payload, nil
}

// FrameWriter writes frames to one connection; it is safe for concurrent
// use, so a guest's stdout and stderr can share it.
type FrameWriter struct {
	mu sync.Mutex
	w  io.Writer
}

// NewFrameWriter returns a FrameWriter on w.
func NewFrameWriter(w io.Writer) *FrameWriter { return &FrameWriter{w: w} }

// WriteFrame writes one frame, cutting a long payload into several.
func (f *FrameWriter) WriteFrame(typ byte, payload []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for first := true; first || len(payload) > 0; first = false {
		chunk := payload[:min(len(payload), maxFrame)]
		payload = payload[len(chunk):]
		var head [5]byte
		head[0] = typ
		binary.BigEndian.PutUint32(head[1:], uint32(len(chunk)))
		if _, err := f.w.Write(append(head[:], chunk...)); err != nil {
			return err
		}
	}
	return nil
}

// StreamWriter is an io.Writer sending each write as a frame of type typ.
func (f *FrameWriter) StreamWriter(typ byte) io.Writer { return frameStream{f, typ} }

type frameStream struct {
	f   *FrameWriter
	typ byte
}

func (s frameStream) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if err := s.f.WriteFrame(s.typ, p); err != nil {
		return 0, err
	}
	return len(p), nil
}
