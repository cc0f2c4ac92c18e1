package volumes

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// setupEmptyDir makes an emptyDir volume: a directory open to every user
// (0777, as kubelet makes it, since the pod's containers may run as
// different users), or a tmpfs mount for medium Memory.
func (m *Manager) setupEmptyDir(pod *corev1.Pod, name string, src *corev1.EmptyDirVolumeSource) (Mount, error) {
	dir := m.volumeDir(pod.UID, pluginEmptyDir, name)
	var err error
	switch medium := src.Medium; {
	case medium == corev1.StorageMediumDefault:
		err = ensureDir(dir, 0o777)
	case medium == corev1.StorageMediumMemory:
		err = m.ensureTmpfs(dir, m.memorySize(pod, src.SizeLimit))
	case medium == corev1.StorageMediumHugePages || strings.HasPrefix(string(medium), string(corev1.StorageMediumHugePagesPrefix)):
		return Mount{}, fmt.Errorf("emptyDir medium %s is not supported by this node", medium)
	default:
		return Mount{}, fmt.Errorf("emptyDir medium %q is not a known storage medium", medium)
	}
	if err != nil {
		return Mount{}, err
	}
	return Mount{HostPath: dir}, nil
}

// ensureTmpfs makes dir and mounts a tmpfs on it, of size bytes when size
// is positive (else the kernel's default, half the node's memory), unless
// a tmpfs is mounted there already.
func (m *Manager) ensureTmpfs(dir string, size int64) error {
	if err := ensureDir(dir, 0o777); err != nil {
		return err
	}
	fstype, mounted, err := mountedAt(dir)
	if err != nil {
		return err
	}
	if mounted {
		if fstype != "tmpfs" {
			return fmt.Errorf("%s is already a %s mount, not tmpfs", dir, fstype)
		}
		return nil
	}
	var opts string
	if size > 0 {
		opts = "size=" + strconv.FormatInt(size, 10)
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, opts); err != nil {
		return fmt.Errorf("mount tmpfs on %s: %w", dir, err)
	}
	m.log.Debug("volumes: mounted tmpfs", "dir", dir, "size", size)
	return nil
}

// memorySize is how large a memory-backed volume may grow, as kubelet
// works it out: the node's allocatable memory, or less, the pod's memory
// limit, or less, the volume's sizeLimit. 0 means no bound is known.
func (m *Manager) memorySize(pod *corev1.Pod, sizeLimit *resource.Quantity) int64 {
	var size int64
	if q, ok := m.allocatable[corev1.ResourceMemory]; ok {
		size = q.Value()
	}
	bounds := []int64{podMemoryLimit(pod)}
	if sizeLimit != nil {
		bounds = append(bounds, sizeLimit.Value())
	}
	for _, b := range bounds {
		if b > 0 && (size <= 0 || b <= size) {
			size = b
		}
	}
	return size
}

// podMemoryLimit is the memory limit of the pod's cgroup as kubelet sets
// it: the pod-level limit, or else, when every container has a memory
// limit, what the containers can use at once (the app containers and the
// sidecars, or an init container and the sidecars started before it),
// plus the pod overhead. 0 when the pod has no memory limit.
func podMemoryLimit(pod *corev1.Pod) int64 {
	overhead := pod.Spec.Overhead[corev1.ResourceMemory]
	if r := pod.Spec.Resources; r != nil {
		if q, ok := r.Limits[corev1.ResourceMemory]; ok && !q.IsZero() {
			return q.Value() + overhead.Value()
		}
	}
	var sidecars, initPeak, apps int64
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		q, ok := c.Resources.Limits[corev1.ResourceMemory]
		if !ok || q.IsZero() {
			return 0
		}
		if c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways {
			sidecars += q.Value()
		} else {
			initPeak = max(initPeak, sidecars+q.Value())
		}
	}
	for i := range pod.Spec.Containers {
		q, ok := pod.Spec.Containers[i].Resources.Limits[corev1.ResourceMemory]
		if !ok || q.IsZero() {
			return 0
		}
		apps += q.Value()
	}
	return max(apps+sidecars, initPeak) + overhead.Value()
}

// mountedAt reports whether something is mounted on dir, and the type of
// the topmost mount there.
func mountedAt(dir string) (fstype string, mounted bool, err error) {
	resolved, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return "", false, err
	}
	mounts, err := mountinfo.GetMounts(func(i *mountinfo.Info) (skip, stop bool) {
		return i.Mountpoint != resolved, false
	})
	if err != nil || len(mounts) == 0 {
		return "", false, err
	}
	// Mounts are listed in the order they were made: the last is on top.
	return mounts[len(mounts)-1].FSType, true, nil
}

// unmountAllBelow lazily unmounts everything mounted on dir or below it,
// deepest first, and fails if anything is still mounted there afterwards.
func unmountAllBelow(dir string) error {
	resolved, err := filepath.EvalSymlinks(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	// Mounts can be stacked on one point; each round takes the top one
	// off.
	const rounds = 8
	for range rounds {
		points, err := mountsBelow(resolved)
		if err != nil || len(points) == 0 {
			return err
		}
		for _, p := range points {
			if err := unix.Unmount(p, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
				return fmt.Errorf("unmount %s: %w", p, err)
			}
		}
	}
	points, err := mountsBelow(resolved)
	if err == nil && len(points) > 0 {
		err = fmt.Errorf("still mounted after unmounting: %s", strings.Join(points, ", "))
	}
	return err
}

// mountsBelow lists the mount points at dir or below it, deepest first.
func mountsBelow(dir string) ([]string, error) {
	mounts, err := mountinfo.GetMounts(mountinfo.PrefixFilter(dir))
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var points []string
	for _, mi := range mounts {
		if !seen[mi.Mountpoint] {
			seen[mi.Mountpoint] = true
			points = append(points, mi.Mountpoint)
		}
	}
	sort.Slice(points, func(i, j int) bool { return len(points[i]) > len(points[j]) })
	return points, nil
}
