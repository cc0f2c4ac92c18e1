package storage

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
)

// compactRevKey records the compactor's progress in etcd so that several API
// servers sharing one cluster compact once per interval between them, as
// kube-apiserver does.
const compactRevKey = "compact_rev_key"

// Option tunes a Backend.
type Option func(*options)

type options struct {
	eventBufferSize    int
	watcherBufferSize  int
	bookmarkInterval   time.Duration
	consistencyTimeout time.Duration
	slowWatcherTimeout time.Duration
	newWatcher         func() clientv3.Watcher
}

func defaultOptions() options {
	return options{
		eventBufferSize:    4096,
		watcherBufferSize:  256,
		bookmarkInterval:   time.Minute,
		consistencyTimeout: 3 * time.Second,
		slowWatcherTimeout: 100 * time.Millisecond,
	}
}

// WithWatchers sets how each resource's watch cache gets its etcd watcher
// (by default clientv3.NewWatcher of the backend's client, one stream per
// resource). A client that is not backed by a gRPC connection, such as
// the embedded member's in-process one, has to supply its own.
func WithWatchers(newWatcher func() clientv3.Watcher) Option {
	return func(o *options) { o.newWatcher = newWatcher }
}

// WithEventBufferSize sets how many recent events each resource's watch
// cache keeps for watches resuming from a resourceVersion (default 4096).
func WithEventBufferSize(n int) Option {
	return func(o *options) {
		if n > 0 {
			o.eventBufferSize = n
		}
	}
}

// WithWatcherBufferSize sets how many events may queue for one watcher
// before it counts as slow (default 256).
func WithWatcherBufferSize(n int) Option {
	return func(o *options) {
		if n > 0 {
			o.watcherBufferSize = n
		}
	}
}

// WithBookmarkInterval sets how often watchers that allow bookmarks get one
// (default 1m).
func WithBookmarkInterval(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.bookmarkInterval = d
		}
	}
}

// WithConsistencyTimeout bounds how long a read waits for the watch cache to
// reach a requested or the current revision (default 3s).
func WithConsistencyTimeout(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.consistencyTimeout = d
		}
	}
}

// WithSlowWatcherTimeout is how long an event's fan-out may wait for watchers
// whose buffer is full before closing them (default 100ms).
func WithSlowWatcherTimeout(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.slowWatcherTimeout = d
		}
	}
}

// Backend owns the etcd client's use by every resource and their watch
// caches.
type Backend struct {
	client *clientv3.Client
	opts   options

	mu           sync.Mutex
	stores       map[string]*store
	compactedRev int64
	closed       bool
}

// NewBackend wraps client. The client stays the caller's to close, after
// Backend.Close.
func NewBackend(client *clientv3.Client, opts ...Option) *Backend {
	o := defaultOptions()
	for _, fn := range opts {
		fn(&o)
	}
	if o.newWatcher == nil {
		o.newWatcher = func() clientv3.Watcher { return clientv3.NewWatcher(client) }
	}
	return &Backend{client: client, opts: o, stores: map[string]*store{}}
}

// Resource returns the storage of one resource, starting its watch cache.
// Asking twice for the same prefix returns the same store, so a resource
// never has more than one etcd watch. It panics on a config without Prefix
// or NewFunc, which is a programming error.
func (b *Backend) Resource(cfg ResourceConfig) Interface {
	if cfg.Prefix == "" || !strings.HasSuffix(cfg.Prefix, "/") {
		panic(fmt.Sprintf("storage: resource %s: Prefix %q must end with /", cfg.GroupResource, cfg.Prefix))
	}
	if cfg.NewFunc == nil {
		panic(fmt.Sprintf("storage: resource %s: NewFunc is required", cfg.GroupResource))
	}
	if cfg.AttrFunc == nil {
		cfg.AttrFunc = DefaultAttrFunc
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		panic("storage: Resource called on a closed Backend")
	}
	if s, ok := b.stores[cfg.Prefix]; ok {
		return s
	}
	s := &store{client: b.client, cfg: cfg}
	s.cache = newCacher(s, b.opts, b.compactedRev)
	b.stores[cfg.Prefix] = s
	return s
}

// DefaultAttrFunc exposes an object's labels and its metadata.name and
// metadata.namespace fields.
func DefaultAttrFunc(obj runtime.Object) (labels.Set, fields.Set, error) {
	acc, err := meta.Accessor(obj)
	if err != nil {
		return nil, nil, fmt.Errorf("storage: object has no metadata: %w", err)
	}
	return labels.Set(acc.GetLabels()), fields.Set{
		"metadata.name":      acc.GetName(),
		"metadata.namespace": acc.GetNamespace(),
	}, nil
}

// CurrentRevision returns etcd's current revision with a quorum read.
func (b *Backend) CurrentRevision(ctx context.Context) (int64, error) {
	return currentRevision(ctx, b.client)
}

func currentRevision(ctx context.Context, c *clientv3.Client) (int64, error) {
	resp, err := c.Get(ctx, compactRevKey)
	if err != nil {
		return 0, internalError(fmt.Errorf("read current revision: %w", err))
	}
	return resp.Header.Revision, nil
}

// Compact compacts etcd at its current revision and returns that revision.
// Reads and watches from older revisions then fail with 410 Expired.
func (b *Backend) Compact(ctx context.Context) (int64, error) {
	rev, err := b.CurrentRevision(ctx)
	if err != nil {
		return 0, err
	}
	if err := b.compactAt(ctx, rev); err != nil {
		return 0, err
	}
	return rev, nil
}

func (b *Backend) compactAt(ctx context.Context, rev int64) error {
	// ErrCompacted means someone already compacted at or past rev: the goal
	// is reached either way.
	if _, err := b.client.Compact(ctx, rev); err != nil && !isCompacted(err) {
		return internalError(fmt.Errorf("compact at %d: %w", rev, err))
	}
	b.mu.Lock()
	if rev > b.compactedRev {
		b.compactedRev = rev
	}
	stores := make([]*store, 0, len(b.stores))
	for _, s := range b.stores {
		stores = append(stores, s)
	}
	b.mu.Unlock()
	for _, s := range stores {
		s.cache.compacted(rev)
	}
	return nil
}

// RunCompactor compacts every interval until ctx ends, like kube-apiserver
// (5 minutes by default there). Each round compacts at the revision seen one
// round earlier, so a watcher always has at least one interval to resume
// from. The round is claimed with a transaction on compactRevKey, so API
// servers sharing one etcd do not all compact.
func (b *Backend) RunCompactor(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		interval = 5 * time.Minute
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	var version, rev int64
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		v, r, err := b.compactRound(ctx, version, rev)
		if err != nil {
			// The next round retries with what we knew; a failed round only
			// delays compaction.
			continue
		}
		version, rev = v, r
	}
}

// compactRound claims the round whose compactRevKey version is version and,
// if it wins, compacts at prevRev. It returns the version and revision to
// use next round.
func (b *Backend) compactRound(ctx context.Context, version, prevRev int64) (int64, int64, error) {
	resp, err := b.client.Txn(ctx).
		If(clientv3.Compare(clientv3.Version(compactRevKey), "=", version)).
		Then(clientv3.OpPut(compactRevKey, strconv.FormatInt(prevRev, 10))).
		Else(clientv3.OpGet(compactRevKey)).
		Commit()
	if err != nil {
		return version, prevRev, internalError(fmt.Errorf("claim compaction: %w", err))
	}
	cur := resp.Header.Revision
	if !resp.Succeeded {
		// Another server compacted this round; follow its count.
		kvs := resp.Responses[0].GetResponseRange().GetKvs()
		if len(kvs) == 0 {
			return 0, cur, nil
		}
		return kvs[0].Version, cur, nil
	}
	if prevRev == 0 {
		return version + 1, cur, nil
	}
	if err := b.compactAt(ctx, prevRev); err != nil {
		return version + 1, cur, err
	}
	return version + 1, cur, nil
}

// Close stops every watch cache and closes their watchers. It does not close
// the etcd client.
func (b *Backend) Close() {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return
	}
	b.closed = true
	stores := b.stores
	b.stores = map[string]*store{}
	b.mu.Unlock()
	for _, s := range stores {
		s.cache.stop()
	}
}

var errClosed = errors.New("storage is closed")
