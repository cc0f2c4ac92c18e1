package storage

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"strings"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
)

// store is one resource: writes and single-object reads go to etcd, lists and
// watches are served by the cache where that is correct.
type store struct {
	client *clientv3.Client
	cfg    ResourceConfig
	cache  *cacher
}

var _ Interface = (*store)(nil)

func (s *store) checkKey(key string) error {
	if !strings.HasPrefix(key, s.cfg.Prefix) || len(key) == len(s.cfg.Prefix) || strings.HasSuffix(key, "/") {
		return apierrors.NewBadRequest(fmt.Sprintf("key %q does not name an object under %q", key, s.cfg.Prefix))
	}
	return nil
}

func (s *store) Create(ctx context.Context, key string, obj runtime.Object) (runtime.Object, error) {
	if err := s.checkKey(key); err != nil {
		return nil, err
	}
	out := obj.DeepCopyObject()
	data, err := encode(out)
	if err != nil {
		return nil, apierrors.NewInternalError(err)
	}
	resp, err := s.client.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, string(data))).
		Commit()
	if err != nil {
		return nil, internalError(fmt.Errorf("create %s: %w", key, err))
	}
	if !resp.Succeeded {
		return nil, apierrors.NewAlreadyExists(s.cfg.GroupResource, nameOf(key))
	}
	if err := setRV(out, resp.Header.Revision); err != nil {
		return nil, apierrors.NewInternalError(err)
	}
	return out, nil
}

// Get reads etcd directly: a single-key quorum read costs one round trip,
// the same as proving the cache fresh would, and it is exact.
func (s *store) Get(ctx context.Context, key string) (runtime.Object, error) {
	if err := s.checkKey(key); err != nil {
		return nil, err
	}
	kv, err := s.getKV(ctx, key)
	if err != nil {
		return nil, err
	}
	return s.decodeKV(kv)
}

func (s *store) getKV(ctx context.Context, key string) (*mvccpb.KeyValue, error) {
	resp, err := s.client.Get(ctx, key)
	if err != nil {
		return nil, internalError(fmt.Errorf("get %s: %w", key, err))
	}
	if len(resp.Kvs) == 0 {
		return nil, apierrors.NewNotFound(s.cfg.GroupResource, nameOf(key))
	}
	return resp.Kvs[0], nil
}

func (s *store) decodeKV(kv *mvccpb.KeyValue) (runtime.Object, error) {
	obj, err := s.decode(kv.Value, kv.ModRevision)
	if err != nil {
		return nil, apierrors.NewInternalError(err)
	}
	return obj, nil
}

func (s *store) GuaranteedUpdate(ctx context.Context, key string, tryUpdate UpdateFunc) (runtime.Object, error) {
	if err := s.checkKey(key); err != nil {
		return nil, err
	}
	kv, err := s.getKV(ctx, key)
	if err != nil {
		return nil, err
	}
	for {
		existing, err := s.decodeKV(kv)
		if err != nil {
			return nil, err
		}
		updated, err := tryUpdate(existing)
		if err != nil {
			return nil, err
		}
		if updated == nil {
			return nil, apierrors.NewInternalError(fmt.Errorf("update of %s returned no object", key))
		}
		// An object carrying a version other than the one it was derived
		// from was built from stale data: refuse rather than overwrite.
		rv, err := getRV(updated)
		if err != nil {
			return nil, apierrors.NewInternalError(err)
		}
		if rv != "" && rv != strconv.FormatInt(kv.ModRevision, 10) {
			return nil, apierrors.NewConflict(s.cfg.GroupResource, nameOf(key), fmt.Errorf("%s", optimisticLockMsg))
		}
		data, err := encode(updated)
		if err != nil {
			return nil, apierrors.NewInternalError(err)
		}
		if bytes.Equal(data, kv.Value) {
			// Nothing changed: no write, no event, the same version.
			if err := setRV(updated, kv.ModRevision); err != nil {
				return nil, apierrors.NewInternalError(err)
			}
			return updated, nil
		}
		rev, winner, err := s.compareAndSwap(ctx, key, kv.ModRevision, clientv3.OpPut(key, string(data)), "update")
		if err != nil {
			return nil, err
		}
		if winner == nil {
			if err := setRV(updated, rev); err != nil {
				return nil, apierrors.NewInternalError(err)
			}
			return updated, nil
		}
		kv = winner // lost the race: retry on the value that won it
	}
}

// compareAndSwap runs op if key is still at modRev and returns the revision
// of the write. When another writer got there first it returns the value
// that won instead, or NotFound when that writer deleted the key.
func (s *store) compareAndSwap(ctx context.Context, key string, modRev int64, op clientv3.Op, what string) (int64, *mvccpb.KeyValue, error) {
	resp, err := s.client.Txn(ctx).
		If(clientv3.Compare(clientv3.ModRevision(key), "=", modRev)).
		Then(op).
		Else(clientv3.OpGet(key)).
		Commit()
	if err != nil {
		return 0, nil, internalError(fmt.Errorf("%s %s: %w", what, key, err))
	}
	if resp.Succeeded {
		return resp.Header.Revision, nil, nil
	}
	kvs := resp.Responses[0].GetResponseRange().GetKvs()
	if len(kvs) == 0 {
		return 0, nil, apierrors.NewNotFound(s.cfg.GroupResource, nameOf(key))
	}
	return 0, kvs[0], nil
}

func (s *store) Delete(ctx context.Context, key string, precondition func(existing runtime.Object) error) (runtime.Object, error) {
	if err := s.checkKey(key); err != nil {
		return nil, err
	}
	kv, err := s.getKV(ctx, key)
	if err != nil {
		return nil, err
	}
	for {
		existing, err := s.decodeKV(kv)
		if err != nil {
			return nil, err
		}
		if precondition != nil {
			if err := precondition(existing); err != nil {
				return nil, err
			}
		}
		rev, winner, err := s.compareAndSwap(ctx, key, kv.ModRevision, clientv3.OpDelete(key), "delete")
		if err != nil {
			return nil, err
		}
		if winner == nil {
			// Like kube-apiserver, the deleted object carries the revision of
			// the deletion, the same as its DELETED watch event.
			if err := setRV(existing, rev); err != nil {
				return nil, apierrors.NewInternalError(err)
			}
			return existing, nil
		}
		kv = winner
	}
}

func (s *store) List(ctx context.Context, prefix string, opts ListOptions) (*ListResult, error) {
	if !strings.HasPrefix(prefix, s.cfg.Prefix) {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("prefix %q is not under %q", prefix, s.cfg.Prefix))
	}
	if !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	if opts.Limit < 0 {
		opts.Limit = 0
	}
	if opts.Continue != "" {
		if opts.ResourceVersion != "" && opts.ResourceVersion != "0" {
			return nil, apierrors.NewBadRequest("specifying resource version is not allowed when using continue")
		}
		start, rev, err := decodeContinue(opts.Continue, prefix)
		if err != nil {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("invalid continue token: %v", err))
		}
		if rev < 0 {
			rev = 0 // the token of a 410 resumes at the latest revision
		}
		return s.listEtcd(ctx, prefix, start, rev, opts, true)
	}
	rv, err := parseRV(opts.ResourceVersion)
	if err != nil {
		return nil, apierrors.NewBadRequest(err.Error())
	}
	switch opts.ResourceVersionMatch {
	case "", metav1.ResourceVersionMatchNotOlderThan, metav1.ResourceVersionMatchExact:
	default:
		return nil, apierrors.NewBadRequest(fmt.Sprintf("unknown resourceVersionMatch %q", opts.ResourceVersionMatch))
	}
	if opts.ResourceVersionMatch == metav1.ResourceVersionMatchExact && rv > 0 {
		// A historic snapshot only etcd has.
		return s.listEtcd(ctx, prefix, prefix, rv, opts, false)
	}
	return s.cache.list(ctx, prefix, opts, rv)
}

func (s *store) Watch(ctx context.Context, prefix string, opts WatchOptions) (watch.Interface, error) {
	if !strings.HasPrefix(prefix, s.cfg.Prefix) {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("prefix %q is not under %q", prefix, s.cfg.Prefix))
	}
	return s.cache.watch(ctx, prefix, opts)
}
