package lb

import (
	"fmt"
)

// Reconcile makes the maps hold exactly want: it reads what is programmed
// and writes only the differences, so the agent's full resync after a
// restart leaves traffic alone where nothing changed. changed counts the
// frontends added, modified or removed.
//
// The writes go in four batches whose order keeps every intermediate state
// consistent for connects running meanwhile: new and changed slots, then
// frontend values, then removed frontends, then slots no frontend counts
// any more.
func (d *Datapath) Reconcile(want map[Frontend]Service) (changed int, err error) {
	type desired struct {
		key svcKey
		bes []backendValue
		val svcValue // but for the id
	}
	wants := make([]desired, 0, len(want))
	for f, s := range want {
		key, err := keyOf(f)
		if err != nil {
			return 0, fmt.Errorf("reconcile: %w", err)
		}
		bes, val, err := encodeService(f, s)
		if err != nil {
			return 0, fmt.Errorf("reconcile: %w", err)
		}
		wants = append(wants, desired{key, bes, val})
	}

	d.mu.Lock()
	defer d.mu.Unlock()
	have, err := dumpServices(d.objs.LbServices)
	if err != nil {
		return 0, fmt.Errorf("reconcile: %w", err)
	}
	slots, err := dumpBackends(d.objs.LbBackends)
	if err != nil {
		return 0, fmt.Errorf("reconcile: %w", err)
	}
	// A failure part way leaves the maps consistent but the allocator
	// possibly ahead of them.
	defer func() {
		if err != nil {
			if rerr := d.rebuildIDs(); rerr != nil {
				err = fmt.Errorf("%w; %w", err, rerr)
			}
		}
	}()

	var (
		slotKeys []backendKey
		slotVals []backendValue
		svcKeys  []svcKey
		svcVals  []svcValue
		delSvcs  []svcKey
		delSlots []backendKey
	)
	count := make(map[uint32]uint16, len(wants)) // final count by id
	wanted := make(map[svcKey]struct{}, len(wants))
	for _, w := range wants {
		wanted[w.key] = struct{}{}
		old, exists := have[w.key]
		if !exists {
			id, err := d.ids.alloc()
			if err != nil {
				return changed, fmt.Errorf("reconcile: %w", err)
			}
			old = svcValue{ID: id}
		}
		dirty := !exists
		for i, b := range w.bes {
			k := backendKey{ID: old.ID, Slot: uint32(i)}
			if cur, ok := slots[k]; !exists || !ok || cur != b {
				slotKeys, slotVals = append(slotKeys, k), append(slotVals, b)
				dirty = true
			}
		}
		val := w.val
		val.ID = old.ID
		if !exists || val != old {
			svcKeys, svcVals = append(svcKeys, w.key), append(svcVals, val)
			dirty = true
		}
		count[old.ID] = val.Count
		if dirty {
			changed++
		}
	}
	var freed []uint32
	for k, v := range have {
		if _, ok := wanted[k]; !ok {
			delSvcs = append(delSvcs, k)
			freed = append(freed, v.ID)
			changed++
		}
	}
	// Slots beyond their frontend's new count, of removed frontends, and
	// any left behind by an interrupted agent.
	for k := range slots {
		if n, ok := count[k.ID]; !ok || k.Slot >= uint32(n) {
			delSlots = append(delSlots, k)
		}
	}

	if err := putAll(d.objs.LbBackends, slotKeys, slotVals); err != nil {
		return changed, fmt.Errorf("reconcile: write %s: %w", MapBackends, err)
	}
	if err := putAll(d.objs.LbServices, svcKeys, svcVals); err != nil {
		return changed, fmt.Errorf("reconcile: write %s: %w", MapServices, err)
	}
	if err := deleteAll(d.objs.LbServices, delSvcs); err != nil {
		return changed, fmt.Errorf("reconcile: delete from %s: %w", MapServices, err)
	}
	if err := deleteAll(d.objs.LbBackends, delSlots); err != nil {
		return changed, fmt.Errorf("reconcile: delete from %s: %w", MapBackends, err)
	}
	for _, id := range freed {
		d.ids.free(id)
	}
	return changed, nil
}
