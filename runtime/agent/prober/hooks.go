package prober

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/wasmkube/wasmkube/runtime/oci"
)

// RunHook runs a postStart or preStop handler of container c, running as
// runtime container id, until it ends or ctx does. On failure it returns
// upstream's message for the FailedPostStartHook or FailedPreStopHook
// event along with the error.
func (m *Manager) RunHook(ctx context.Context, pod *corev1.Pod, c *corev1.Container, id, podIP string, h *corev1.LifecycleHandler) (string, error) {
	podName := fmt.Sprintf("%s_%s(%s)", pod.Name, pod.Namespace, pod.UID)
	switch {
	case h.Exec != nil:
		var out limitedBuffer
		code, err := m.hooks.exec.Exec(ctx, id, oci.ExecOptions{Cmd: h.Exec.Command, Stdout: &out, Stderr: &out})
		if err == nil && code != 0 {
			err = fmt.Errorf("command '%s' exited with %d: %s", strings.Join(h.Exec.Command, " "), code, out.String())
		}
		if err != nil {
			return fmt.Sprintf("Exec lifecycle hook (%v) for Container %q in Pod %q failed - error: %v, message: %q",
				h.Exec.Command, c.Name, podName, err, out.String()), err
		}
		return "", nil
	case h.HTTPGet != nil:
		err := m.hooks.get(ctx, h.HTTPGet, Target{ContainerID: id, Container: c, PodIP: podIP})
		if err != nil {
			return fmt.Sprintf("HTTP lifecycle hook (%s) for Container %q in Pod %q failed - error: %v",
				h.HTTPGet.Path, c.Name, podName, err), err
		}
		return "", nil
	case h.Sleep != nil:
		t := time.NewTimer(time.Duration(h.Sleep.Seconds) * time.Second)
		defer t.Stop()
		select {
		case <-t.C:
			return "", nil
		case <-ctx.Done():
			err := errors.New("container terminated before sleep hook finished")
			return fmt.Sprintf("Sleep lifecycle hook (%d) for Container %q in Pod %q failed - error: %v",
				h.Sleep.Seconds, c.Name, podName, err), err
		}
	}
	err := errors.New("cannot run handler: no exec, httpGet or sleep action")
	return fmt.Sprintf("Lifecycle hook for Container %q in Pod %q failed - error: %v", c.Name, podName, err), err
}

// get makes an httpGet hook's request. As upstream, any answer is a
// success; only a request that fails is not.
func (c *checker) get(ctx context.Context, a *corev1.HTTPGetAction, t Target) error {
	req, err := newHTTPRequest(ctx, a, t, c.userAgent)
	if err != nil {
		return err
	}
	res, err := c.http.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, maxOutput))
	return res.Body.Close()
}
