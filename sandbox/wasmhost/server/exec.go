package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime/debug"

	"github.com/wasmkube/wasmkube/runtime/wasm"
	"github.com/wasmkube/wasmkube/sandbox/wasmhost"
)

// exec runs a new instance of c's module with the request's argv and the
// container's environment and preopens, its streams as frames on the
// hijacked connection.
func (h *host) exec(w http.ResponseWriter, r *http.Request, c *container) (any, error) {
	var req wasmhost.ExecRequest
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	if len(req.Argv) == 0 {
		return nil, statusErr(http.StatusBadRequest, "exec needs argv")
	}
	if !c.running() || c.module == nil {
		return nil, statusErr(http.StatusConflict, "container %q is not running", c.spec.ID)
	}
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return nil, fmt.Errorf("take the connection over: %w", err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: "+wasmhost.ExecUpgrade+"\r\n\r\n"); err != nil {
		return hijacked, nil
	}

	// The client going away (the connection breaks) kills the instance.
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(errors.New("exec ended"))
	var stdin io.Reader = bytes.NewReader(nil)
	pr, pw := io.Pipe()
	if req.Stdin {
		stdin = pr
	}
	go func() {
		for {
			typ, payload, err := wasmhost.ReadFrame(brw.Reader)
			if err != nil {
				pw.CloseWithError(io.ErrUnexpectedEOF)
				cancel(fmt.Errorf("exec client went away: %w", err))
				return
			}
			switch typ {
			case wasmhost.FrameStdin:
				if req.Stdin {
					_, _ = pw.Write(payload)
				}
			case wasmhost.FrameStdinClose:
				pw.Close()
			}
		}
	}()

	fw := wasmhost.NewFrameWriter(conn)
	exit := h.runExec(ctx, c, req.Argv, stdin, fw)
	payload, _ := json.Marshal(exit)
	_ = fw.WriteFrame(wasmhost.FrameExit, payload)
	return hijacked, nil
}

func (h *host) runExec(ctx context.Context, c *container, argv []string, stdin io.Reader, fw *wasmhost.FrameWriter) (exit wasmhost.ExecExit) {
	defer func() {
		if p := recover(); p != nil {
			h.log.Error("exec panic", "id", c.spec.ID, "panic", p, "stack", string(debug.Stack()))
			exit = wasmhost.ExecExit{ExitCode: wasm.ExitCodeTrapped, Error: fmt.Sprintf("sandbox panic: %v", p)}
		}
		debug.FreeOSMemory()
	}()
	opts := append(c.runOptions(), wasm.WithArgv(argv...), wasm.WithStdin(stdin),
		wasm.WithStdout(fw.StreamWriter(wasmhost.FrameStdout)), wasm.WithStderr(fw.StreamWriter(wasmhost.FrameStderr)))
	res, err := c.module.Run(ctx, opts...)
	if err != nil {
		return wasmhost.ExecExit{ExitCode: ExitCodeStartError, Error: err.Error()}
	}
	h.log.Info("exec ended", "id", c.spec.ID, "exitCode", res.ExitCode, "reason", res.Reason())
	return wasmhost.ExecExit{ExitCode: res.ExitCode}
}
