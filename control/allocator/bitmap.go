package allocator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"math/rand/v2"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// ErrAllocated is returned when a requested item is already taken.
var ErrAllocated = errors.New("already allocated")

// ErrFull is returned when a range has no free item.
var ErrFull = errors.New("range is full")

// persisted is the stored form of a range.
type persisted struct {
	Range string `json:"range"`
	Data  []byte `json:"data"`
}

// bitmap is a set of offsets in [0, size) kept in etcd under key.
type bitmap struct {
	client   *clientv3.Client
	key      string
	rangeStr string
	size     int
	// reserved offsets are never picked dynamically, only on request.
	reserved map[int]bool
}

// update applies change to the current bits under a compare-and-swap,
// retrying when another writer got there first.
func (b *bitmap) update(ctx context.Context, change func(bits *big.Int) error) error {
	for {
		resp, err := b.client.Get(ctx, b.key)
		if err != nil {
			return fmt.Errorf("reading %s: %w", b.key, err)
		}
		bits := new(big.Int)
		var modRev int64
		if len(resp.Kvs) == 1 {
			var p persisted
			if err := json.Unmarshal(resp.Kvs[0].Value, &p); err != nil {
				return fmt.Errorf("decoding %s: %w", b.key, err)
			}
			if p.Range != b.rangeStr {
				return fmt.Errorf("%s holds the range %s, not %s: the range cannot change while objects use it", b.key, p.Range, b.rangeStr)
			}
			bits.SetBytes(p.Data)
			modRev = resp.Kvs[0].ModRevision
		}
		if err := change(bits); err != nil {
			return err
		}
		data, err := json.Marshal(persisted{Range: b.rangeStr, Data: bits.Bytes()})
		if err != nil {
			return err
		}
		txn, err := b.client.Txn(ctx).
			If(clientv3.Compare(clientv3.ModRevision(b.key), "=", modRev)).
			Then(clientv3.OpPut(b.key, string(data))).
			Commit()
		if err != nil {
			return fmt.Errorf("writing %s: %w", b.key, err)
		}
		if txn.Succeeded {
			return nil
		}
	}
}

func (b *bitmap) allocate(ctx context.Context, offset int) error {
	return b.update(ctx, func(bits *big.Int) error {
		if bits.Bit(offset) == 1 {
			return ErrAllocated
		}
		bits.SetBit(bits, offset, 1)
		return nil
	})
}

func (b *bitmap) allocateNext(ctx context.Context) (int, error) {
	var picked int
	err := b.update(ctx, func(bits *big.Int) error {
		// Random probing first, then a scan, so a nearly full range still
		// finds its last free items.
		for range 32 {
			o := rand.IntN(b.size)
			if bits.Bit(o) == 0 && !b.reserved[o] {
				picked = o
				bits.SetBit(bits, o, 1)
				return nil
			}
		}
		start := rand.IntN(b.size)
		for i := range b.size {
			o := (start + i) % b.size
			if bits.Bit(o) == 0 && !b.reserved[o] {
				picked = o
				bits.SetBit(bits, o, 1)
				return nil
			}
		}
		return ErrFull
	})
	return picked, err
}

func (b *bitmap) release(ctx context.Context, offset int) error {
	return b.update(ctx, func(bits *big.Int) error {
		bits.SetBit(bits, offset, 0)
		return nil
	})
}

func (b *bitmap) has(ctx context.Context, offset int) (bool, error) {
	var set bool
	resp, err := b.client.Get(ctx, b.key)
	if err != nil {
		return false, fmt.Errorf("reading %s: %w", b.key, err)
	}
	if len(resp.Kvs) == 1 {
		var p persisted
		if err := json.Unmarshal(resp.Kvs[0].Value, &p); err != nil {
			return false, fmt.Errorf("decoding %s: %w", b.key, err)
		}
		set = new(big.Int).SetBytes(p.Data).Bit(offset) == 1
	}
	return set, nil
}
