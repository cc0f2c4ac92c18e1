package oci

import "github.com/wasmkube/wasmkube/runtime/crilog"

// LogRotation bounds a container's log on disk; see crilog.Rotation.
type LogRotation = crilog.Rotation

// Kubelet's defaults for containerLogMaxSize and containerLogMaxFiles.
const (
	DefaultLogMaxSize  = crilog.DefaultMaxSize
	DefaultLogMaxFiles = crilog.DefaultMaxFiles
)

// Stream names in the CRI log format.
const (
	streamStdout = crilog.Stdout
	streamStderr = crilog.Stderr
)

// RotatedLogs lists the rotated files of the log at path, oldest first.
func RotatedLogs(path string) ([]string, error) { return crilog.RotatedLogs(path) }

// streamWriter is one stream of a task: its CRI log records, and the
// clients attached to it. cio calls it from one goroutine.
type streamWriter struct {
	log *crilog.Writer
	fan fanout // attached clients
}

func (w *streamWriter) Write(p []byte) (int, error) {
	w.fan.write(p)
	return w.log.Write(p)
}

func (w *streamWriter) flush() error { return w.log.Flush() }
