package storage

import (
	"context"
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
)

func (p Predicate) empty() bool {
	return (p.Label == nil || p.Label.Empty()) && (p.Field == nil || p.Field.Empty())
}

func (p Predicate) matches(l labels.Set, f fields.Set) bool {
	if p.Label != nil && !p.Label.Empty() && !p.Label.Matches(l) {
		return false
	}
	if p.Field != nil && !p.Field.Empty() && !p.Field.Matches(f) {
		return false
	}
	return true
}

// listEtcd reads one page from etcd at revision rev (0: the latest, pinned by
// the first read so every chunk comes from one snapshot), starting at start.
// continuing marks a request resuming a previous page, whose compaction error
// carries a fresh token.
func (s *store) listEtcd(ctx context.Context, prefix, start string, rev int64, opts ListOptions, continuing bool) (*ListResult, error) {
	end := prefixEnd(prefix)
	filter := !opts.Predicate.empty()
	res := &ListResult{Items: []runtime.Object{}}
	key := start
	var lastKey string
	for {
		ops := []clientv3.OpOption{clientv3.WithRange(end)}
		if rev > 0 {
			ops = append(ops, clientv3.WithRev(rev))
		}
		if opts.Limit > 0 {
			ops = append(ops, clientv3.WithLimit(opts.Limit))
		}
		resp, err := s.client.Get(ctx, key, ops...)
		if err != nil {
			return nil, s.listError(ctx, err, rev, start, prefix, continuing)
		}
		if rev == 0 {
			rev = resp.Header.Revision
		}
		for i, kv := range resp.Kvs {
			lastKey = string(kv.Key)
			obj, err := s.decodeKV(kv)
			if err != nil {
				return nil, err
			}
			if filter {
				l, f, err := s.cfg.AttrFunc(obj)
				if err != nil || !opts.Predicate.matches(l, f) {
					continue
				}
			}
			res.Items = append(res.Items, obj)
			if opts.Limit > 0 && int64(len(res.Items)) == opts.Limit {
				more := i < len(resp.Kvs)-1 || resp.More
				if more {
					if !filter {
						n := resp.Count - int64(i+1)
						res.RemainingItemCount = &n
					}
					tok, err := encodeContinue(lastKey+"\x00", prefix, rev)
					if err != nil {
						return nil, apierrors.NewInternalError(err)
					}
					res.Continue = tok
				}
				res.ResourceVersion = rev
				return res, nil
			}
		}
		if opts.Limit == 0 || !resp.More || len(resp.Kvs) == 0 {
			break
		}
		// Filtering left the page short: read on from where we stopped.
		key = lastKey + "\x00"
	}
	res.ResourceVersion = rev
	return res, nil
}

func (s *store) listError(ctx context.Context, err error, rev int64, start, prefix string, continuing bool) error {
	switch {
	case isCompacted(err) && continuing:
		// kube-apiserver hands back a token that resumes at the latest
		// revision, for clients that accept an inconsistent list.
		tok, terr := encodeContinue(start, prefix, -1)
		if terr != nil {
			return apierrors.NewResourceExpired(continueExpired)
		}
		st := apierrors.NewResourceExpired(inconsistentContinue)
		st.ErrStatus.ListMeta.Continue = tok
		return st
	case isCompacted(err):
		return apierrors.NewResourceExpired(listExpiredMsg)
	case isFutureRev(err):
		cur, cerr := currentRevision(ctx, s.client)
		if cerr != nil {
			cur = 0
		}
		return tooLargeRV(rev, cur)
	}
	return internalError(fmt.Errorf("list %s: %w", prefix, err))
}
