package storage

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
)

// cachedObj is an object as the cache holds it. It is shared by the cache, its
// event buffer and every watcher, so it is never modified after creation.
type cachedObj struct {
	obj    runtime.Object
	labels labels.Set
	fields fields.Set
}

// event is one change seen on the etcd watch. For a deletion, cur is the last
// state stamped with the deletion's revision and prev is that last state.
type event struct {
	typ  watch.EventType
	key  string
	rev  int64
	cur  *cachedObj
	prev *cachedObj
}

// cacher is the watch cache of one resource: a copy of its objects fed by a
// single etcd watch, plus a ring of recent events for resuming watchers.
type cacher struct {
	s    *store
	opts options

	ctx    context.Context
	cancel context.CancelFunc
	// wctx carries the metadata of the watch stream; progress requests must
	// use the same metadata to reach the same stream.
	wctx    context.Context
	watcher clientv3.Watcher
	wg      sync.WaitGroup
	readyCh chan struct{}

	mu      sync.RWMutex
	objects map[string]*cachedObj
	keys    []string // sorted keys of objects
	// rev is the revision the cache is known to reflect: every change up to
	// it has been applied and dispatched.
	rev   int64
	revCh chan struct{} // closed and replaced whenever rev advances
	ring  []*event
	head  int // index of the oldest event in ring
	size  int
	// bufStartRev: every event after this revision is in the ring.
	bufStartRev  int64
	compactedRev int64
	watchers     map[uint64]*cacheWatcher
	watcherList  []*cacheWatcher // copy-on-write snapshot for dispatch
	nextID       uint64
	stopped      bool
}

func newCacher(s *store, opts options, compactedRev int64) *cacher {
	ctx, cancel := context.WithCancel(context.Background())
	c := &cacher{
		s:            s,
		opts:         opts,
		ctx:          ctx,
		cancel:       cancel,
		wctx:         clientv3.WithRequireLeader(ctx),
		watcher:      opts.newWatcher(),
		readyCh:      make(chan struct{}),
		objects:      map[string]*cachedObj{},
		revCh:        make(chan struct{}),
		ring:         make([]*event, opts.eventBufferSize),
		compactedRev: compactedRev,
		watchers:     map[uint64]*cacheWatcher{},
	}
	c.wg.Add(1)
	go c.run()
	return c
}

func (c *cacher) run() {
	defer c.wg.Done()
	backoff := 100 * time.Millisecond
	for {
		err := c.listAndWatch()
		if c.ctx.Err() != nil {
			return
		}
		if err == nil {
			backoff = 100 * time.Millisecond
		}
		select {
		case <-c.ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// listAndWatch loads the current state and follows the etcd watch until it
// fails. Everything that changes the cache or reaches watchers happens on
// this goroutine, which keeps events and bookmarks in revision order.
func (c *cacher) listAndWatch() error {
	objects, rev, err := c.listAll()
	if err != nil {
		return err
	}
	c.replace(objects, rev)

	ctx, cancel := context.WithCancel(c.wctx)
	defer cancel()
	wch := c.watcher.Watch(ctx, c.s.cfg.Prefix, clientv3.WithPrefix(), clientv3.WithRev(rev+1), clientv3.WithProgressNotify())
	bookmarks := time.NewTicker(c.opts.bookmarkInterval)
	defer bookmarks.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return nil
		case <-bookmarks.C:
			if c.wantsBookmarks() {
				// Ask etcd to vouch for a newer revision, then bookmark what we
				// already know; the answer advances the next bookmark.
				_ = c.watcher.RequestProgress(c.wctx)
				c.dispatchBookmark()
			}
		case wr, ok := <-wch:
			if !ok {
				return errors.New("etcd watch closed")
			}
			if err := wr.Err(); err != nil {
				return fmt.Errorf("etcd watch on %s: %w", c.s.cfg.Prefix, err)
			}
			if wr.IsProgressNotify() {
				c.advance(wr.Header.Revision)
				continue
			}
			if len(wr.Events) == 0 {
				continue
			}
			c.dispatch(c.apply(wr.Events))
		}
	}
}

// listAll reads every object of the resource in pages, all at one revision.
func (c *cacher) listAll() (map[string]*cachedObj, int64, error) {
	prefix := c.s.cfg.Prefix
	end := prefixEnd(prefix)
	objects := map[string]*cachedObj{}
	var rev int64
	key := prefix
	for {
		ops := []clientv3.OpOption{clientv3.WithRange(end), clientv3.WithLimit(1000)}
		if rev > 0 {
			ops = append(ops, clientv3.WithRev(rev))
		}
		resp, err := c.s.client.Get(c.ctx, key, ops...)
		if err != nil {
			return nil, 0, fmt.Errorf("list %s: %w", prefix, err)
		}
		if rev == 0 {
			rev = resp.Header.Revision
		}
		for _, kv := range resp.Kvs {
			if co, err := c.newCached(kv.Value, kv.ModRevision); err == nil {
				objects[string(kv.Key)] = co
			}
		}
		if !resp.More || len(resp.Kvs) == 0 {
			return objects, rev, nil
		}
		key = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
}

func (c *cacher) newCached(data []byte, rev int64) (*cachedObj, error) {
	obj, err := c.s.decode(data, rev)
	if err != nil {
		return nil, err
	}
	return c.wrap(obj)
}

func (c *cacher) wrap(obj runtime.Object) (*cachedObj, error) {
	l, f, err := c.s.cfg.AttrFunc(obj)
	if err != nil {
		return nil, fmt.Errorf("storage: attributes of %s: %w", c.s.cfg.GroupResource, err)
	}
	return &cachedObj{obj: obj, labels: l, fields: f}, nil
}

// replace installs a fresh state. After a relist the events in between are
// unknown, so existing watchers are closed: they resume (or get 410) on
// their own, exactly as after an API server restart.
func (c *cacher) replace(objects map[string]*cachedObj, rev int64) {
	keys := make([]string, 0, len(objects))
	for k := range objects {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	c.mu.Lock()
	old := c.watchers
	c.watchers = map[uint64]*cacheWatcher{}
	c.watcherList = nil
	c.objects, c.keys = objects, keys
	c.ring = make([]*event, c.opts.eventBufferSize)
	c.head, c.size = 0, 0
	c.bufStartRev = rev
	c.setRevLocked(rev)
	c.mu.Unlock()
	for _, w := range old {
		w.terminate()
	}
	select {
	case <-c.readyCh:
	default:
		close(c.readyCh)
	}
}

// apply folds etcd events into the state and returns them as cache events.
func (c *cacher) apply(evs []*clientv3.Event) []*event {
	out := make([]*event, 0, len(evs))
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, ev := range evs {
		key := string(ev.Kv.Key)
		rev := ev.Kv.ModRevision
		prev := c.objects[key]
		e := &event{key: key, rev: rev, prev: prev}
		switch ev.Type {
		case mvccpb.PUT:
			co, err := c.newCached(ev.Kv.Value, rev)
			if err != nil {
				// An undecodable value cannot be shown to anyone; keep the
				// revision moving so readers are not stuck behind it.
				c.setRevLocked(rev)
				continue
			}
			e.cur, e.typ = co, watch.Modified
			if prev == nil {
				e.typ = watch.Added
				c.insertKeyLocked(key)
			}
			c.objects[key] = co
		case mvccpb.DELETE:
			if prev == nil {
				c.setRevLocked(rev)
				continue
			}
			gone := prev.obj.DeepCopyObject()
			_ = setRV(gone, rev)
			e.cur = &cachedObj{obj: gone, labels: prev.labels, fields: prev.fields}
			e.typ = watch.Deleted
			delete(c.objects, key)
			c.removeKeyLocked(key)
		}
		c.pushLocked(e)
		out = append(out, e)
		c.setRevLocked(rev)
	}
	return out
}

func (c *cacher) pushLocked(e *event) {
	n := len(c.ring)
	if c.size == n {
		// The evicted event's revision may be shared with the next one (a
		// transaction), so resuming is only safe strictly after it.
		c.bufStartRev = c.ring[c.head].rev
		c.ring[c.head] = nil
		c.head = (c.head + 1) % n
		c.size--
	}
	c.ring[(c.head+c.size)%n] = e
	c.size++
}

func (c *cacher) insertKeyLocked(key string) {
	i := sort.SearchStrings(c.keys, key)
	c.keys = append(c.keys, "")
	copy(c.keys[i+1:], c.keys[i:])
	c.keys[i] = key
}

func (c *cacher) removeKeyLocked(key string) {
	i := sort.SearchStrings(c.keys, key)
	if i < len(c.keys) && c.keys[i] == key {
		c.keys = append(c.keys[:i], c.keys[i+1:]...)
	}
}

func (c *cacher) setRevLocked(rev int64) {
	if rev > c.rev {
		c.rev = rev
		close(c.revCh)
		c.revCh = make(chan struct{})
	}
}

// advance records a progress notification: etcd vouches that every change
// up to rev has been delivered.
func (c *cacher) advance(rev int64) {
	c.mu.Lock()
	c.setRevLocked(rev)
	c.mu.Unlock()
}

func (c *cacher) compacted(rev int64) {
	c.mu.Lock()
	if rev > c.compactedRev {
		c.compactedRev = rev
	}
	c.mu.Unlock()
}

func (c *cacher) waitReady(ctx context.Context) error {
	select {
	case <-c.readyCh:
		return nil
	case <-ctx.Done():
		return internalError(ctx.Err())
	case <-c.ctx.Done():
		return apierrors.NewServiceUnavailable(errClosed.Error())
	}
}

// waitFresh waits until the cache reflects revision target, nudging etcd for
// progress notifications meanwhile.
func (c *cacher) waitFresh(ctx context.Context, target int64) error {
	if err := c.waitReady(ctx); err != nil {
		return err
	}
	deadline := time.NewTimer(c.opts.consistencyTimeout)
	defer deadline.Stop()
	var nudge <-chan time.Time
	for first := true; ; first = false {
		c.mu.RLock()
		rev, ch := c.rev, c.revCh
		c.mu.RUnlock()
		if rev >= target {
			return nil
		}
		if first {
			_ = c.watcher.RequestProgress(c.wctx)
			t := time.NewTicker(100 * time.Millisecond)
			defer t.Stop()
			nudge = t.C
		}
		select {
		case <-ch:
		case <-nudge:
			_ = c.watcher.RequestProgress(c.wctx)
		case <-deadline.C:
			return tooLargeRV(target, rev)
		case <-ctx.Done():
			return internalError(ctx.Err())
		case <-c.ctx.Done():
			return apierrors.NewServiceUnavailable(errClosed.Error())
		}
	}
}

// waitConsistent waits until the cache reflects etcd's current revision.
func (c *cacher) waitConsistent(ctx context.Context) error {
	if err := c.waitReady(ctx); err != nil {
		return err
	}
	rev, err := currentRevision(ctx, c.s.client)
	if err != nil {
		return err
	}
	return c.waitFresh(ctx, rev)
}

func (c *cacher) stop() {
	c.mu.Lock()
	if c.stopped {
		c.mu.Unlock()
		return
	}
	c.stopped = true
	ws := c.watchers
	c.watchers = map[uint64]*cacheWatcher{}
	c.watcherList = nil
	c.mu.Unlock()
	c.cancel()
	for _, w := range ws {
		w.terminate()
	}
	_ = c.watcher.Close()
	c.wg.Wait()
}
