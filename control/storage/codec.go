package storage

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
)

// encode marshals obj with its resourceVersion cleared, without touching the
// caller's object: the version belongs to etcd, not to the stored value.
func encode(obj runtime.Object) ([]byte, error) {
	acc, err := meta.Accessor(obj)
	if err != nil {
		return nil, fmt.Errorf("storage: object has no metadata: %w", err)
	}
	rv := acc.GetResourceVersion()
	if rv == "" {
		return json.Marshal(obj)
	}
	acc.SetResourceVersion("")
	data, err := json.Marshal(obj)
	acc.SetResourceVersion(rv)
	return data, err
}

// decode builds a fresh object from a stored value and stamps it with rev.
func (s *store) decode(data []byte, rev int64) (runtime.Object, error) {
	obj := s.cfg.NewFunc()
	if err := json.Unmarshal(data, obj); err != nil {
		return nil, fmt.Errorf("storage: decode %s: %w", s.cfg.GroupResource, err)
	}
	if err := setRV(obj, rev); err != nil {
		return nil, err
	}
	return obj, nil
}

func setRV(obj runtime.Object, rev int64) error {
	acc, err := meta.Accessor(obj)
	if err != nil {
		return fmt.Errorf("storage: object has no metadata: %w", err)
	}
	acc.SetResourceVersion(strconv.FormatInt(rev, 10))
	return nil
}

func getRV(obj runtime.Object) (string, error) {
	acc, err := meta.Accessor(obj)
	if err != nil {
		return "", fmt.Errorf("storage: object has no metadata: %w", err)
	}
	return acc.GetResourceVersion(), nil
}

// nameOf is the last segment of a key, the object name for error messages.
func nameOf(key string) string {
	return key[strings.LastIndexByte(key, '/')+1:]
}

// parseRV parses a resourceVersion; "" is 0.
func parseRV(rv string) (int64, error) {
	if rv == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(rv, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("invalid resource version %q", rv)
	}
	return n, nil
}

// prefixEnd is the first key after every key starting with prefix.
func prefixEnd(prefix string) string {
	b := []byte(prefix)
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] < 0xff {
			b[i]++
			return string(b[:i+1])
		}
	}
	return "\x00"
}
