package storage

import (
	"context"
	"sort"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
)

// list answers a list from memory. rv "" waits until the cache provably
// matches etcd's current revision, "0" takes the cache as it is, N waits until
// the cache is at least at N. The page's continue token points into etcd at
// the cache's revision, which holds exactly the state the cache had.
func (c *cacher) list(ctx context.Context, prefix string, opts ListOptions, rv int64) (*ListResult, error) {
	var err error
	switch {
	case opts.ResourceVersion == "":
		err = c.waitConsistent(ctx)
	case rv > 0:
		err = c.waitFresh(ctx, rv)
	default:
		err = c.waitReady(ctx)
	}
	if err != nil {
		return nil, err
	}

	filter := !opts.Predicate.empty()
	var picked []*cachedObj
	var lastKey string
	var more bool
	var remaining int64
	c.mu.RLock()
	rev := c.rev
	lo := sort.SearchStrings(c.keys, prefix)
	hi := lo + sort.SearchStrings(c.keys[lo:], prefixEnd(prefix))
	for i := lo; i < hi; i++ {
		key := c.keys[i]
		co := c.objects[key]
		if filter && !opts.Predicate.matches(co.labels, co.fields) {
			continue
		}
		picked = append(picked, co)
		lastKey = key
		if opts.Limit > 0 && int64(len(picked)) == opts.Limit {
			more = i+1 < hi
			remaining = int64(hi - i - 1)
			break
		}
	}
	c.mu.RUnlock()

	res := &ListResult{Items: make([]runtime.Object, len(picked)), ResourceVersion: rev}
	// Callers own what they get back; the cached objects stay untouched.
	for i, co := range picked {
		res.Items[i] = co.obj.DeepCopyObject()
	}
	if more {
		tok, err := encodeContinue(lastKey+"\x00", prefix, rev)
		if err != nil {
			return nil, apierrors.NewInternalError(err)
		}
		res.Continue = tok
		if !filter {
			res.RemainingItemCount = &remaining
		}
	}
	return res, nil
}

// keyMatcher tells whether a key is watched: a prefix ending in "/" (or the
// resource prefix) watches everything under it, anything else one key.
func keyMatcher(resourcePrefix, prefix string) func(string) bool {
	if prefix == resourcePrefix || strings.HasSuffix(prefix, "/") {
		return func(k string) bool { return strings.HasPrefix(k, prefix) }
	}
	return func(k string) bool { return k == prefix }
}
