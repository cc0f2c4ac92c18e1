package pods

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/containerd/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/wasmkube/wasmkube/runtime/agent/envvars"
	"github.com/wasmkube/wasmkube/runtime/agent/prober"
	"github.com/wasmkube/wasmkube/runtime/oci"
)

// configError is a container spec that cannot be turned into a runtime
// container as the objects stand (CreateContainerConfigError).
type configError struct{ msg string }

func (e *configError) Error() string { return e.msg }

func configErrorf(format string, args ...any) error {
	return &configError{msg: fmt.Sprintf(format, args...)}
}

// startContainer makes and starts the next attempt of c. Whatever stops it
// is recorded as the container's waiting reason; the result is when to
// look again (0: on events).
func (m *Manager) startContainer(ctx context.Context, pod *corev1.Pod, rec *record, c *corev1.Container, mounts map[string]Mount) time.Duration {
	delete(rec.waiting, c.Name)
	if w, retry := m.ensureImage(ctx, pod, c); w != nil {
		rec.waiting[c.Name] = w
		return retry
	}
	n := rec.nextAttempt(c.Name)
	spec, err := m.containerSpec(ctx, pod, rec, c, n, mounts)
	if err != nil {
		reason := "CreateContainerError"
		var ce *configError
		if errors.As(err, &ce) || errors.Is(err, envvars.ErrConfigNotFound) {
			reason = "CreateContainerConfigError"
		}
		rec.waiting[c.Name] = &corev1.ContainerStateWaiting{Reason: reason, Message: err.Error()}
		m.recorder.Eventf(prober.ContainerRef(pod, c), corev1.EventTypeWarning, "Failed", "Error: %v", err)
		return 10 * time.Second
	}
	err = m.cfg.Runtime.Create(ctx, spec)
	if errors.Is(err, errdefs.ErrAlreadyExists) {
		// Left by an agent that crashed before recording it.
		if err = m.cfg.Runtime.Remove(ctx, spec.ID); err == nil {
			err = m.cfg.Runtime.Create(ctx, spec)
		}
	}
	if err != nil {
		rec.waiting[c.Name] = &corev1.ContainerStateWaiting{Reason: "CreateContainerError", Message: err.Error()}
		m.recorder.Eventf(prober.ContainerRef(pod, c), corev1.EventTypeWarning, "Failed", "Error: %v", err)
		return 10 * time.Second
	}
	a := &attempt{id: spec.ID, n: n, state: oci.State{ID: spec.ID, Status: oci.StatusCreated}}
	for _, old := range rec.add(c.Name, a) {
		// One that cannot go now is left to the container garbage
		// collection.
		if err := m.removeAttempt(ctx, rec, c.Name, old); err != nil {
			m.log.Debug("pods: remove an old attempt", "id", old.id, "err", err)
		}
	}
	m.recorder.Event(prober.ContainerRef(pod, c), corev1.EventTypeNormal, "Created", "Container created")
	m.startAttempt(ctx, pod, rec, c, a)
	return 0
}

// startAttempt starts a made container and watches for its exit.
func (m *Manager) startAttempt(ctx context.Context, pod *corev1.Pod, rec *record, c *corev1.Container, a *attempt) {
	if err := m.cfg.Runtime.Start(ctx, a.id); err != nil {
		a.startErr = err.Error()
		a.state.FinishedAt = time.Now()
		m.recorder.Eventf(prober.ContainerRef(pod, c), corev1.EventTypeWarning, "Failed", "Error: %v", err)
		return
	}
	m.recorder.Event(prober.ContainerRef(pod, c), corev1.EventTypeNormal, "Started", "Container started")
	m.watchExit(ctx, rec.key(), a.id)
	// The sync holds the pod while the hook runs, so no status shows the
	// container running before its postStart hook returned.
	m.runPostStart(ctx, pod, rec, c, a)
	if st, err := m.cfg.Runtime.Status(ctx, a.id); err == nil {
		a.state = st
	}
}

// ensureImage applies imagePullPolicy. A nil result means the image is
// there; otherwise it is the waiting state to report and when to retry.
func (m *Manager) ensureImage(ctx context.Context, pod *corev1.Pod, c *corev1.Container) (*corev1.ContainerStateWaiting, time.Duration) {
	present, err := m.cfg.Images.Present(ctx, c.Image)
	if err != nil {
		return &corev1.ContainerStateWaiting{Reason: "ErrImageInspect", Message: err.Error()}, 10 * time.Second
	}
	policy := c.ImagePullPolicy
	if policy == corev1.PullNever || (present && policy != corev1.PullAlways) {
		if !present {
			msg := fmt.Sprintf("Container image %q is not present with pull policy of Never", c.Image)
			m.recorder.Event(prober.ContainerRef(pod, c), corev1.EventTypeWarning, "ErrImageNeverPull", msg)
			return &corev1.ContainerStateWaiting{Reason: "ErrImageNeverPull", Message: msg}, 0
		}
		m.recorder.Eventf(prober.ContainerRef(pod, c), corev1.EventTypeNormal, "Pulled", "Container image %q already present on machine and can be accessed by the pod", c.Image)
		return nil, 0
	}
	key := string(pod.UID) + "/" + c.Image
	now := time.Now()
	if m.pullBackOff.IsInBackOffSinceUpdate(key, now) {
		msg := fmt.Sprintf("Back-off pulling image %q", c.Image)
		m.recorder.Event(prober.ContainerRef(pod, c), corev1.EventTypeNormal, "BackOff", msg)
		// Looked at again every few seconds: the back-off's own clock
		// decides when the next pull happens.
		return &corev1.ContainerStateWaiting{Reason: "ImagePullBackOff", Message: msg}, 2 * time.Second
	}
	m.recorder.Eventf(prober.ContainerRef(pod, c), corev1.EventTypeNormal, "Pulling", "Pulling image %q", c.Image)
	if err := m.cfg.Images.Pull(ctx, c.Image); err != nil {
		m.pullBackOff.Next(key, now)
		msg := fmt.Sprintf("Failed to pull image %q: %v", c.Image, err)
		m.recorder.Event(prober.ContainerRef(pod, c), corev1.EventTypeWarning, "Failed", msg)
		// ErrImagePull stays until the next look, which then shows
		// ImagePullBackOff, as kubelet alternates them.
		return &corev1.ContainerStateWaiting{Reason: "ErrImagePull", Message: msg}, 2 * time.Second
	}
	m.pullBackOff.Reset(key)
	m.recorder.Eventf(prober.ContainerRef(pod, c), corev1.EventTypeNormal, "Pulled", "Successfully pulled image %q in %s", c.Image, time.Since(now).Round(time.Millisecond))
	return nil, 0
}

// containerSpec turns attempt n of c into the runtime's spec.
func (m *Manager) containerSpec(ctx context.Context, pod *corev1.Pod, rec *record, c *corev1.Container, n int, mounts map[string]Mount) (oci.Spec, error) {
	sb := rec.sandbox
	var podIPs []string
	if sb.ip != nil {
		podIPs = []string{sb.ip.String()}
	}
	env, err := m.cfg.Env(ctx, pod, c, podIPs)
	if err != nil {
		return oci.Spec{}, err
	}
	s := oci.Spec{
		ID:           containerID(pod.UID, c.Name, n),
		Image:        c.Image,
		Labels:       containerLabels(pod, c.Name, n),
		Command:      c.Command,
		Args:         c.Args,
		Env:          env,
		WorkingDir:   c.WorkingDir,
		NetnsPath:    sb.netnsPath,
		LogPath:      filepath.Join(m.logDir(pod.Namespace, pod.Name, pod.UID), c.Name, strconv.Itoa(n)+".log"),
		CgroupParent: sb.cgroupParent,
		ShimGroup:    string(pod.UID),
		Stdin:        c.Stdin,
		StdinOnce:    c.StdinOnce,
		TTY:          c.TTY,
	}
	if rc := pod.Spec.RuntimeClassName; rc != nil {
		s.RuntimeClass = *rc
	}
	for _, p := range c.Ports {
		s.Ports = append(s.Ports, oci.Port{Port: p.ContainerPort, Protocol: string(p.Protocol)})
	}
	if !sb.hostNetwork {
		s.Hostname = podHostname(pod)
	}
	host := s.Hostname
	if sb.hostNetwork {
		host, _ = os.Hostname()
	}
	// The container runtime's HOSTNAME, which declared variables override.
	s.Env = append([]string{"HOSTNAME=" + host}, s.Env...)
	if s.Mounts, err = m.containerMounts(pod, rec, c, n, mounts); err != nil {
		return oci.Spec{}, err
	}
	setResources(&s, c.Resources)
	if err := m.setSecurity(ctx, &s, pod, c); err != nil {
		return oci.Spec{}, err
	}
	return s, nil
}

// logDir is upstream's /var/log/pods/<ns>_<name>_<uid> under the agent's
// directory.
func (m *Manager) logDir(ns, name string, uid types.UID) string {
	return filepath.Join(m.cfg.Dir, "logs", fmt.Sprintf("%s_%s_%s", ns, name, uid))
}

// containerMounts are the volume mounts, the pod's hosts and resolver
// files, and the termination log.
func (m *Manager) containerMounts(pod *corev1.Pod, rec *record, c *corev1.Container, n int, mounts map[string]Mount) ([]specs.Mount, error) {
	var out []specs.Mount
	taken := map[string]bool{}
	for _, vm := range c.VolumeMounts {
		v, ok := mounts[vm.Name]
		if !ok {
			return nil, configErrorf("cannot find volume %q to mount into container %q", vm.Name, c.Name)
		}
		src := v.HostPath
		if vm.SubPath != "" {
			sub := filepath.Clean(vm.SubPath)
			if filepath.IsAbs(sub) || sub == ".." || strings.HasPrefix(sub, "../") {
				return nil, configErrorf("subPath %q of volume %q must be a relative path inside the volume", vm.SubPath, vm.Name)
			}
			src = filepath.Join(src, sub)
			if _, err := os.Stat(src); errors.Is(err, os.ErrNotExist) {
				if err := os.MkdirAll(src, 0o755); err != nil {
					return nil, fmt.Errorf("create subPath %s: %w", src, err)
				}
			}
		}
		mt := specs.Mount{Destination: vm.MountPath, Source: src}
		if vm.ReadOnly || v.ReadOnly {
			mt.Options = []string{"ro"}
		}
		out = append(out, mt)
		taken[vm.MountPath] = true
	}
	sb := rec.sandbox
	if sb.hostsPath != "" && !taken["/etc/hosts"] {
		out = append(out, specs.Mount{Destination: "/etc/hosts", Source: sb.hostsPath})
	}
	if sb.resolvPath != "" && !taken["/etc/resolv.conf"] {
		out = append(out, specs.Mount{Destination: "/etc/resolv.conf", Source: sb.resolvPath, Options: []string{"ro"}})
	}
	if path := terminationPath(c); path != "" && !taken[path] {
		file, err := m.terminationLog(pod.UID, c.Name, n)
		if err != nil {
			return nil, err
		}
		out = append(out, specs.Mount{Destination: path, Source: file})
	}
	return out, nil
}

func terminationPath(c *corev1.Container) string {
	if c.TerminationMessagePath != "" {
		return c.TerminationMessagePath
	}
	return corev1.TerminationMessagePathDefault
}

// terminationLog makes the file a container may write its termination
// message to; world-writable, since the container may run as any user.
func (m *Manager) terminationLog(uid types.UID, container string, n int) (string, error) {
	dir := m.cfg.Sandboxes.ContainerDir(uid, container)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("termination log dir: %w", err)
	}
	file := filepath.Join(dir, strconv.Itoa(n)+"-termination-log")
	f, err := os.OpenFile(file, os.O_CREATE|os.O_WRONLY, 0o666)
	if err != nil {
		return "", fmt.Errorf("termination log: %w", err)
	}
	f.Close()
	return file, os.Chmod(file, 0o666)
}

// terminationMessage is what the ended attempt wrote to its termination
// log, upstream's 4096-byte limit applied. It is read once: the file is
// final after the exit, and the status is built on every sync.
func (m *Manager) terminationMessage(uid types.UID, container string, a *attempt) string {
	if a.messageRead {
		return a.message
	}
	a.messageRead = true
	file := filepath.Join(m.cfg.Sandboxes.ContainerDir(uid, container), strconv.Itoa(a.n)+"-termination-log")
	f, err := os.Open(file)
	if err != nil {
		return ""
	}
	defer f.Close()
	buf := make([]byte, 4096)
	k, _ := f.Read(buf)
	a.message = string(buf[:k])
	return a.message
}

// setResources turns requests and limits into cgroup settings as kubelet
// does: shares from the CPU request, quota from the CPU limit over a
// 100 ms period.
func setResources(s *oci.Spec, r corev1.ResourceRequirements) {
	const period = 100000
	if q, ok := r.Limits[corev1.ResourceMemory]; ok {
		s.MemoryLimit = q.Value()
	}
	if q, ok := r.Limits[corev1.ResourceCPU]; ok && q.MilliValue() > 0 {
		quota := q.MilliValue() * period / 1000
		if quota < 1000 {
			quota = 1000 // the kernel's minimum
		}
		s.CPUQuota, s.CPUPeriod = quota, period
	}
	shares := uint64(2)
	if q, ok := r.Requests[corev1.ResourceCPU]; ok {
		if v := uint64(q.MilliValue()) * 1024 / 1000; v > shares {
			shares = v
		}
	}
	s.CPUShares = shares
}

// setSecurity applies the pod's and the container's securityContext, the
// container's fields winning.
func (m *Manager) setSecurity(ctx context.Context, s *oci.Spec, pod *corev1.Pod, c *corev1.Container) error {
	var uid, gid *int64
	var nonRoot *bool
	var groups []int64
	if psc := pod.Spec.SecurityContext; psc != nil {
		uid, gid, nonRoot, groups = psc.RunAsUser, psc.RunAsGroup, psc.RunAsNonRoot, psc.SupplementalGroups
	}
	sc := c.SecurityContext
	if sc != nil {
		if sc.RunAsUser != nil {
			uid = sc.RunAsUser
		}
		if sc.RunAsGroup != nil {
			gid = sc.RunAsGroup
		}
		if sc.RunAsNonRoot != nil {
			nonRoot = sc.RunAsNonRoot
		}
	}
	if nonRoot != nil && *nonRoot {
		if err := m.checkNonRoot(ctx, pod, c, uid); err != nil {
			return err
		}
	}
	if uid != nil || gid != nil {
		u := &specs.User{}
		if uid != nil {
			u.UID = uint32(*uid)
		}
		if gid != nil {
			u.GID = uint32(*gid)
		}
		for _, g := range groups {
			u.AdditionalGids = append(u.AdditionalGids, uint32(g))
		}
		s.User = u
	}
	if sc == nil {
		return nil
	}
	s.ReadOnlyRootfs = sc.ReadOnlyRootFilesystem != nil && *sc.ReadOnlyRootFilesystem
	s.Privileged = sc.Privileged != nil && *sc.Privileged
	s.NoNewPrivileges = sc.AllowPrivilegeEscalation != nil && !*sc.AllowPrivilegeEscalation
	if caps := sc.Capabilities; caps != nil {
		for _, cp := range caps.Add {
			s.CapAdd = append(s.CapAdd, string(cp))
		}
		for _, cp := range caps.Drop {
			s.CapDrop = append(s.CapDrop, string(cp))
		}
	}
	return nil
}

// checkNonRoot refuses a container that would run as root under
// runAsNonRoot, with upstream's messages.
func (m *Manager) checkNonRoot(ctx context.Context, pod *corev1.Pod, c *corev1.Container, uid *int64) error {
	where := fmt.Sprintf("(pod: %q, container: %s)", pod.Name+"_"+pod.Namespace+"("+string(pod.UID)+")", c.Name)
	if uid != nil {
		if *uid == 0 {
			return configErrorf("container's runAsUser breaks non-root policy %s", where)
		}
		return nil
	}
	user, err := m.cfg.Images.User(ctx, c.Image)
	if err != nil {
		return fmt.Errorf("read the user of image %s: %w", c.Image, err)
	}
	name, _, _ := strings.Cut(user, ":")
	if name == "" || name == "0" || name == "root" {
		return configErrorf("container has runAsNonRoot and image will run as root %s", where)
	}
	if _, err := strconv.ParseUint(name, 10, 32); err != nil {
		return configErrorf("container has runAsNonRoot and image has non-numeric user (%s), cannot verify user is non-root %s", name, where)
	}
	return nil
}
