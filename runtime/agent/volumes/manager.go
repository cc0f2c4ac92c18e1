package volumes

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Sources gives the objects volumes are built from. The agent passes a
// cached client; a missing object is reported with a NotFound error from
// k8s.io/apimachinery/pkg/api/errors (a nil object with a nil error counts
// as missing too).
type Sources interface {
	ConfigMap(ctx context.Context, namespace, name string) (*corev1.ConfigMap, error)
	Secret(ctx context.Context, namespace, name string) (*corev1.Secret, error)
}

// TokenSource returns a token of the pod's service account for a projected
// serviceAccountToken source; audience is "" for the API server's own. It is
// called on every Setup, so it should hand out the same token until that
// one needs renewing, as kubelet's token manager does: a new token rewrites
// the volume.
type TokenSource func(ctx context.Context, pod *corev1.Pod, audience string, expirationSeconds int64) (string, error)

// ErrSourceNotFound is matched (errors.Is) by the error of a volume whose
// required ConfigMap or Secret, or a required key of one, is missing. The
// pod can start once it appears.
var ErrSourceNotFound = errors.New("volume source not found")

// Mount is where a volume is on the host.
type Mount struct {
	HostPath string
	// ReadOnly is set for configMap, secret, downwardAPI and projected
	// volumes, which containers must mount read-only (as in kubelet).
	ReadOnly bool
}

// Option configures a Manager.
type Option func(*Manager)

// WithLogger sets where the Manager reports what it does. Default
// slog.Default().
func WithLogger(l *slog.Logger) Option {
	return func(m *Manager) {
		if l != nil {
			m.log = l
		}
	}
}

// WithNodeAllocatable gives the node's allocatable resources. They stand in
// for a container's unset cpu, memory and ephemeral-storage limits in a
// downward API resourceFieldRef, and bound the size of memory-backed
// volumes, as in kubelet.
func WithNodeAllocatable(rl corev1.ResourceList) Option {
	return func(m *Manager) { m.allocatable = rl.DeepCopy() }
}

// WithTokenSource makes projected serviceAccountToken sources work. Without
// it, a volume that projects a service account token fails to set up.
func WithTokenSource(ts TokenSource) Option {
	return func(m *Manager) { m.tokens = ts }
}

// Manager prepares and removes pod volumes under one pods directory. It is
// safe for concurrent use; calls for the same pod are serialized.
type Manager struct {
	podsDir     string
	src         Sources
	log         *slog.Logger
	allocatable corev1.ResourceList
	tokens      TokenSource
	claims      ClaimSource

	locksMu sync.Mutex
	locks   map[types.UID]*podLock
}

type podLock struct {
	sync.Mutex
	refs int
}

// New makes a Manager that keeps volumes in podsDir/<podUID>/volumes.
func New(podsDir string, src Sources, opts ...Option) *Manager {
	m := &Manager{podsDir: podsDir, src: src, log: slog.Default(), locks: map[types.UID]*podLock{}}
	for _, o := range opts {
		o(m)
	}
	return m
}

// The volume plugin directories, named as kubelet names them.
const (
	pluginEmptyDir    = "kubernetes.io~empty-dir"
	pluginConfigMap   = "kubernetes.io~configmap"
	pluginSecret      = "kubernetes.io~secret"
	pluginDownwardAPI = "kubernetes.io~downward-api"
	pluginProjected   = "kubernetes.io~projected"
)

// SetupError is why one volume of a pod could not be set up.
type SetupError struct {
	Pod    string // namespace/name
	Volume string
	Err    error
}

func (e *SetupError) Error() string {
	return fmt.Sprintf("pod %s: volume %q: %v", e.Pod, e.Volume, e.Err)
}

func (e *SetupError) Unwrap() error { return e.Err }

// VolumeName names the volume, for the pod worker's FailedMount events.
func (e *SetupError) VolumeName() string { return e.Volume }

// Setup makes every volume of the pod ready and returns where each is on
// the host, by volume name. It is idempotent and meant to be called on
// every sync of the pod: it brings configMap, secret, downwardAPI and
// projected volumes up to date, switching each atomically to new content
// when its sources changed. A volume that cannot be set up is left out of
// the map and its error, naming the pod and the volume, is joined into the
// returned one; the other volumes are set up all the same.
func (m *Manager) Setup(ctx context.Context, pod *corev1.Pod) (map[string]Mount, error) {
	if pod == nil {
		return nil, errors.New("volumes: no pod")
	}
	if err := checkPathName("pod UID", string(pod.UID)); err != nil {
		return nil, fmt.Errorf("pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	unlock := m.lock(pod.UID)
	defer unlock()

	mounts := make(map[string]Mount, len(pod.Spec.Volumes))
	var errs []error
	for i := range pod.Spec.Volumes {
		v := &pod.Spec.Volumes[i]
		mnt, err := m.setupVolume(ctx, pod, v)
		if err != nil {
			errs = append(errs, &SetupError{Pod: pod.Namespace + "/" + pod.Name, Volume: v.Name, Err: err})
			continue
		}
		mounts[v.Name] = mnt
	}
	return mounts, errors.Join(errs...)
}

func (m *Manager) setupVolume(ctx context.Context, pod *corev1.Pod, v *corev1.Volume) (Mount, error) {
	if err := checkPathName("volume name", v.Name); err != nil {
		return Mount{}, err
	}
	switch {
	case v.HostPath != nil:
		return setupHostPath(v.HostPath)
	case v.PersistentVolumeClaim != nil:
		return m.setupClaim(ctx, pod, v.PersistentVolumeClaim)
	case v.EmptyDir != nil:
		return m.setupEmptyDir(pod, v.Name, v.EmptyDir)
	case v.ConfigMap != nil:
		s := v.ConfigMap
		return m.setupPayload(pod, pluginConfigMap, v.Name, false, func() (payload, error) {
			return m.configMaps().payload(ctx, pod.Namespace, s.Name, s.Items, s.Optional, s.DefaultMode)
		})
	case v.Secret != nil:
		s := v.Secret
		return m.setupPayload(pod, pluginSecret, v.Name, true, func() (payload, error) {
			return m.secrets().payload(ctx, pod.Namespace, s.SecretName, s.Items, s.Optional, s.DefaultMode)
		})
	case v.DownwardAPI != nil:
		s := v.DownwardAPI
		return m.setupPayload(pod, pluginDownwardAPI, v.Name, true, func() (payload, error) {
			return m.downwardPayload(pod, s.Items, s.DefaultMode)
		})
	case v.Projected != nil:
		return m.setupPayload(pod, pluginProjected, v.Name, true, func() (payload, error) {
			return m.projectedPayload(ctx, pod, v.Projected)
		})
	}
	kind := sourceKind(v.VolumeSource)
	if kind == "" {
		return Mount{}, errors.New("the volume has no source")
	}
	return Mount{}, fmt.Errorf("%s volumes are not supported by this node", kind)
}

// setupPayload prepares a volume whose files the agent writes: it
// collects and checks the payload first, so that a volume whose sources
// are missing is not even created, then makes the directory (on tmpfs when inMemory)
// and writes the payload atomically.
func (m *Manager) setupPayload(pod *corev1.Pod, plugin, name string, inMemory bool, collect func() (payload, error)) (Mount, error) {
	dir := m.volumeDir(pod.UID, plugin, name)
	p, err := collect()
	if err == nil {
		p, err = cleanPayload(p)
	}
	if err != nil && unreachable(err) && written(dir) {
		// The API server cannot be asked (a node cut off from its
		// control plane, or an agent started while it is): what the
		// volume holds is the last content read, and a restarting
		// container is better off with it than not starting at all.
		m.log.Warn("volumes: sources unreachable, keeping the volume's content", "pod", pod.Namespace+"/"+pod.Name, "volume", name, "err", err)
		return Mount{HostPath: dir, ReadOnly: true}, nil
	}
	if err != nil {
		return Mount{}, err
	}
	if inMemory {
		err = m.ensureTmpfs(dir, m.memorySize(pod, nil))
	} else {
		err = ensureDir(dir, 0o777)
	}
	if err != nil {
		return Mount{}, err
	}
	changed, err := writeAtomic(dir, p)
	if err != nil {
		return Mount{}, err
	}
	if changed {
		m.log.Info("volumes: wrote volume", "pod", pod.Namespace+"/"+pod.Name, "volume", name, "files", len(p))
	}
	return Mount{HostPath: dir, ReadOnly: true}, nil
}

// sourceKind names the source set in a VolumeSource or a VolumeProjection
// by its field name in the API ("persistentVolumeClaim"), or "" when none
// is set.
func sourceKind(src any) string {
	v := reflect.ValueOf(src)
	if v.Kind() != reflect.Struct {
		return ""
	}
	for i := 0; i < v.NumField(); i++ {
		f := v.Field(i)
		if f.Kind() != reflect.Pointer || f.IsNil() {
			continue
		}
		name, _, _ := strings.Cut(v.Type().Field(i).Tag.Get("json"), ",")
		if name == "" {
			name = v.Type().Field(i).Name
		}
		return name
	}
	return ""
}

// TearDown unmounts and removes every volume directory of the pod. It is
// idempotent. A hostPath volume's path is never touched. Nothing is
// removed while something is still mounted below the pod's volumes
// directory, so that a removal never reaches into another filesystem.
func (m *Manager) TearDown(podUID types.UID) error {
	if err := checkPathName("pod UID", string(podUID)); err != nil {
		return err
	}
	unlock := m.lock(podUID)
	defer unlock()

	dir := m.podVolumesDir(podUID)
	if err := unmountAllBelow(dir); err != nil {
		return fmt.Errorf("tear down volumes of pod %s: %w", podUID, err)
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("tear down volumes of pod %s: %w", podUID, err)
	}
	m.log.Debug("volumes: removed the volumes of a pod", "uid", podUID)
	return nil
}

// PodUIDs lists the pods that have a volumes directory on disk, so that
// the agent can tear down those of pods that are gone after a restart.
func (m *Manager) PodUIDs() ([]types.UID, error) {
	entries, err := os.ReadDir(m.podsDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list pod volumes: %w", err)
	}
	var uids []types.UID
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		uid := types.UID(e.Name())
		fi, err := os.Lstat(m.podVolumesDir(uid))
		if err == nil && fi.IsDir() {
			uids = append(uids, uid)
		}
	}
	return uids, nil
}

func (m *Manager) podVolumesDir(uid types.UID) string {
	return filepath.Join(m.podsDir, string(uid), "volumes")
}

func (m *Manager) volumeDir(uid types.UID, plugin, name string) string {
	return filepath.Join(m.podVolumesDir(uid), plugin, name)
}

// lock serializes the calls for one pod and returns the unlock function.
func (m *Manager) lock(uid types.UID) func() {
	m.locksMu.Lock()
	l := m.locks[uid]
	if l == nil {
		l = &podLock{}
		m.locks[uid] = l
	}
	l.refs++
	m.locksMu.Unlock()

	l.Lock()
	return func() {
		l.Unlock()
		m.locksMu.Lock()
		if l.refs--; l.refs == 0 {
			delete(m.locks, uid)
		}
		m.locksMu.Unlock()
	}
}

// checkPathName rejects a pod UID or volume name that could not be one
// path element.
func checkPathName(what, s string) error {
	if s == "" || s == "." || s == ".." || strings.ContainsAny(s, "/\x00") {
		return fmt.Errorf("invalid %s %q", what, s)
	}
	return nil
}

// ensureDir makes dir and its parents, and gives dir the mode perm
// whatever the umask.
func ensureDir(dir string, perm os.FileMode) error {
	if err := os.MkdirAll(dir, perm); err != nil {
		return err
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if fi.Mode().Perm() != perm {
		return os.Chmod(dir, perm)
	}
	return nil
}

// unreachable says whether err is a failure to reach the API server (a
// transport error of the client) rather than its answer (NotFound,
// Forbidden, ...) or a payload the volume rejects.
func unreachable(err error) bool {
	var urlErr *url.Error
	var opErr *net.OpError
	return errors.As(err, &urlErr) || errors.As(err, &opErr)
}

// written says whether dir holds content of an earlier Setup.
func written(dir string) bool {
	_, err := os.Lstat(filepath.Join(dir, dataDirName))
	return err == nil
}
