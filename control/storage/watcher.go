package storage

import (
	"context"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
)

// cacheWatcher is one client's watch. The dispatcher only queues events on
// input; filtering and sending happen on the watcher's own goroutine so a
// slow client delays nobody but itself.
//
// Each watcher sends its own copy of an object: consumers stamp TypeMeta or
// otherwise touch what they receive, and a shared object would make every
// watcher race with the others and with the cache. The copy is made on the
// watcher's goroutine, off the dispatch path.
type cacheWatcher struct {
	c        *cacher
	id       uint64
	match    func(key string) bool
	pred     Predicate
	bookmark bool
	startRev int64 // events at or before it are covered by initial/replay

	initial    []*cachedObj // sent as ADDED first
	replay     []*event     // buffered events after the requested version
	initialEnd bool         // send the WatchList end-of-initial-events bookmark
	lastRev    int64

	input    chan *event
	result   chan watch.Event
	done     chan struct{}
	stopOnce sync.Once
}

func (w *cacheWatcher) ResultChan() <-chan watch.Event { return w.result }

// Stop ends the watch; the result channel closes shortly after.
func (w *cacheWatcher) Stop() {
	w.terminate()
	w.c.removeWatcher(w.id)
}

func (w *cacheWatcher) terminate() {
	w.stopOnce.Do(func() { close(w.done) })
}

func (c *cacher) removeWatcher(id uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.watchers[id]; !ok {
		return
	}
	delete(c.watchers, id)
	list := make([]*cacheWatcher, 0, len(c.watchers))
	for _, w := range c.watcherList {
		if w.id != id {
			list = append(list, w)
		}
	}
	c.watcherList = list
}

// errWatcher delivers one error event and closes, which is how a watch that
// cannot start is reported to the client.
type errWatcher struct{ ch chan watch.Event }

func newErrWatcher(err *apierrors.StatusError) watch.Interface {
	ch := make(chan watch.Event, 1)
	st := err.Status()
	ch <- watch.Event{Type: watch.Error, Object: &st}
	close(ch)
	return errWatcher{ch: ch}
}

func (w errWatcher) ResultChan() <-chan watch.Event { return w.ch }
func (w errWatcher) Stop()                          {}

func (c *cacher) watch(ctx context.Context, prefix string, opts WatchOptions) (watch.Interface, error) {
	rv, err := parseRV(opts.ResourceVersion)
	if err != nil {
		return nil, apierrors.NewBadRequest(err.Error())
	}
	sendInitial := opts.SendInitialEvents != nil && *opts.SendInitialEvents ||
		opts.SendInitialEvents == nil && rv == 0
	switch {
	case opts.ResourceVersion == "":
		err = c.waitConsistent(ctx)
	case rv > 0:
		err = c.waitFresh(ctx, rv)
	default:
		err = c.waitReady(ctx)
	}
	if err != nil {
		if st, ok := err.(*apierrors.StatusError); ok && rv > 0 {
			return newErrWatcher(st), nil
		}
		return nil, err
	}

	w := &cacheWatcher{
		c:          c,
		match:      keyMatcher(c.s.cfg.Prefix, prefix),
		pred:       opts.Predicate,
		bookmark:   opts.AllowBookmarks,
		initialEnd: opts.SendInitialEvents != nil && *opts.SendInitialEvents,
		input:      make(chan *event, c.opts.watcherBufferSize),
		result:     make(chan watch.Event),
		done:       make(chan struct{}),
	}
	c.mu.Lock()
	if c.stopped {
		c.mu.Unlock()
		return nil, apierrors.NewServiceUnavailable(errClosed.Error())
	}
	w.startRev, w.lastRev = c.rev, c.rev
	if sendInitial {
		for _, k := range c.keys {
			if co := c.objects[k]; w.match(k) && w.pred.matches(co.labels, co.fields) {
				w.initial = append(w.initial, co)
			}
		}
	} else if rv > 0 {
		oldest := max(c.bufStartRev, c.compactedRev)
		if rv < oldest {
			c.mu.Unlock()
			return newErrWatcher(tooOldRV(rv, oldest)), nil
		}
		for i := 0; i < c.size; i++ {
			if e := c.ring[(c.head+i)%len(c.ring)]; e.rev > rv && w.match(e.key) {
				w.replay = append(w.replay, e)
			}
		}
	}
	c.nextID++
	w.id = c.nextID
	c.watchers[w.id] = w
	c.watcherList = append(append(make([]*cacheWatcher, 0, len(c.watcherList)+1), c.watcherList...), w)
	c.wg.Add(1)
	c.mu.Unlock()

	go w.run(ctx)
	return w, nil
}

func (w *cacheWatcher) run(ctx context.Context) {
	defer w.c.wg.Done()
	defer close(w.result)
	defer w.c.removeWatcher(w.id)
	for _, co := range w.initial {
		if !w.send(ctx, watch.Event{Type: watch.Added, Object: co.obj}) {
			return
		}
	}
	w.initial = nil
	if w.initialEnd {
		obj := w.bookmarkObject(w.startRev)
		if acc, err := meta.Accessor(obj); err == nil {
			acc.SetAnnotations(map[string]string{metav1.InitialEventsAnnotationKey: "true"})
		}
		if !w.send(ctx, watch.Event{Type: watch.Bookmark, Object: obj}) {
			return
		}
	}
	for _, e := range w.replay {
		if !w.process(ctx, e) {
			return
		}
	}
	w.replay = nil
	for {
		select {
		case e := <-w.input:
			if !w.process(ctx, e) {
				return
			}
		case <-w.done:
			return
		case <-ctx.Done():
			return
		}
	}
}

func (w *cacheWatcher) send(ctx context.Context, ev watch.Event) bool {
	select {
	case w.result <- ev:
		return true
	case <-w.done:
		return false
	case <-ctx.Done():
		return false
	}
}

func (w *cacheWatcher) bookmarkObject(rev int64) runtime.Object {
	obj := w.c.s.cfg.NewFunc()
	_ = setRV(obj, rev)
	return obj
}

// process turns a cache event into what this watcher should see. An object
// entering the watcher's selection is ADDED, one leaving it DELETED (with its
// previous content at the event's version), as kube-apiserver does.
func (w *cacheWatcher) process(ctx context.Context, e *event) bool {
	if e.typ == watch.Bookmark {
		if !w.bookmark || e.rev <= w.lastRev {
			return true
		}
		w.lastRev = e.rev
		return w.send(ctx, watch.Event{Type: watch.Bookmark, Object: w.bookmarkObject(e.rev)})
	}
	w.lastRev = e.rev
	var out watch.Event
	switch e.typ {
	case watch.Added:
		if !w.pred.matches(e.cur.labels, e.cur.fields) {
			return true
		}
		out = watch.Event{Type: watch.Added, Object: e.cur.obj}
	case watch.Modified:
		cur := w.pred.matches(e.cur.labels, e.cur.fields)
		prev := e.prev != nil && w.pred.matches(e.prev.labels, e.prev.fields)
		switch {
		case cur && prev:
			out = watch.Event{Type: watch.Modified, Object: e.cur.obj}
		case cur:
			out = watch.Event{Type: watch.Added, Object: e.cur.obj}
		case prev:
			gone := e.prev.obj.DeepCopyObject()
			_ = setRV(gone, e.rev)
			out = watch.Event{Type: watch.Deleted, Object: gone}
		default:
			return true
		}
	case watch.Deleted:
		if !w.pred.matches(e.cur.labels, e.cur.fields) {
			return true
		}
		out = watch.Event{Type: watch.Deleted, Object: e.cur.obj}
	default:
		return true
	}
	return w.send(ctx, out)
}

func (c *cacher) wantsBookmarks() bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	for _, w := range c.watcherList {
		if w.bookmark {
			return true
		}
	}
	return false
}

// dispatchBookmark offers every bookmarking watcher the cache's revision.
// Bookmarks are optional, so a full watcher just misses this one.
func (c *cacher) dispatchBookmark() {
	c.mu.RLock()
	e := &event{typ: watch.Bookmark, rev: c.rev}
	ws := c.watcherList
	c.mu.RUnlock()
	for _, w := range ws {
		if w.bookmark && e.rev > w.startRev {
			select {
			case w.input <- e:
			default:
			}
		}
	}
}

// dispatch queues events for every interested watcher. A watcher whose queue
// stays full past the slow-watcher budget is closed: it would otherwise hold
// every other watcher back. The client then resumes from its last version.
func (c *cacher) dispatch(evs []*event) {
	c.mu.RLock()
	ws := c.watcherList
	c.mu.RUnlock()
	if len(ws) == 0 {
		return
	}
	var blocked []*cacheWatcher
	for _, e := range evs {
		blocked = blocked[:0]
		for _, w := range ws {
			if e.rev <= w.startRev || !w.match(e.key) {
				continue
			}
			select {
			case w.input <- e:
			case <-w.done:
			default:
				blocked = append(blocked, w)
			}
		}
		if len(blocked) == 0 {
			continue
		}
		timer := time.NewTimer(c.opts.slowWatcherTimeout)
		expired := false
		for _, w := range blocked {
			if expired {
				select {
				case w.input <- e:
				case <-w.done:
				default:
					w.Stop()
				}
				continue
			}
			select {
			case w.input <- e:
			case <-w.done:
			case <-timer.C:
				expired = true
				select {
				case w.input <- e:
				default:
					w.Stop()
				}
			}
		}
		timer.Stop()
	}
}
