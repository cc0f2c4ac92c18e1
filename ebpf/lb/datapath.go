package lb

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/cilium/ebpf"
)

// Datapath is the loaded socket programs and the pinned maps they share
// with the tc programs. It is the only writer of lb_services and
// lb_backends; one agent at a time may hold a Datapath that writes.
//
// Under the pin directory:
//
//	lb_services, lb_backends, lb_affinity, lb_sock_rev, lb_config
//	                                    the maps, pinned by their lb.h names
//	links/cgroup-<inode>-<hook>         one bpf_link per socket hook and
//	                                    cgroup (hook: connect4, sendmsg4,
//	                                    recvmsg4, getpeername4)
//
// A frontend's backends are slots 0..count-1 of its id in lb_backends; ids
// are private to the Datapath and rebuilt from lb_services by Open.
type Datapath struct {
	mu     sync.Mutex
	pinDir string
	objs   sockObjects
	ids    idAllocator
}

// Option configures Open.
type Option func(*options)

type options struct {
	log *slog.Logger
}

// WithLogger logs what Open had to repair, such as pinned maps of an older
// layout it replaced.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) { o.log = l }
}

// Open loads the socket programs and creates their maps under pinDir, or
// reuses the maps pinned there by an earlier agent, entries included, so a
// restart neither drops nor rewrites what is programmed. bpffs is mounted
// at /sys/fs/bpf when nothing is mounted there.
//
// A pinned map whose layout no longer matches the programs (pinned by an
// older version) is replaced by an empty one, and logged: the agent writes
// the node config and reconciles every frontend when it starts, and the
// affinity and reverse-translation entries it loses are remade by new
// connections.
func Open(pinDir string, opt ...Option) (*Datapath, error) {
	o := options{log: slog.New(slog.DiscardHandler)}
	for _, f := range opt {
		f(&o)
	}
	if err := ensurePinDir(pinDir); err != nil {
		return nil, fmt.Errorf("open datapath: %w", err)
	}
	d := &Datapath{pinDir: pinDir}
	opts := &ebpf.CollectionOptions{Maps: ebpf.MapOptions{PinPath: pinDir}}
	err := loadSockObjects(&d.objs, opts)
	if errors.Is(err, ebpf.ErrMapIncompatible) {
		replaced, rmErr := unpinIncompatible(pinDir)
		if rmErr != nil {
			return nil, fmt.Errorf("load socket programs: %w (and replace the stale maps: %v)", err, rmErr)
		}
		o.log.Warn("lb: replaced pinned maps of an older layout with empty ones", "pinDir", pinDir, "maps", replaced)
		err = loadSockObjects(&d.objs, opts)
	}
	if err != nil {
		var verr *ebpf.VerifierError
		if errors.As(err, &verr) {
			return nil, fmt.Errorf("load socket programs: %+v", verr)
		}
		return nil, fmt.Errorf("load socket programs (maps pinned in %s): %w", pinDir, err)
	}
	if err := d.rebuildIDs(); err != nil {
		d.objs.Close()
		return nil, err
	}
	return d, nil
}

// unpinIncompatible removes the maps pinned in pinDir that the socket
// programs' maps (every lb_* map) cannot use, and names them.
func unpinIncompatible(pinDir string) ([]string, error) {
	spec, err := loadSock()
	if err != nil {
		return nil, err
	}
	var replaced []string
	for name, ms := range spec.Maps {
		if ms.Pinning != ebpf.PinByName {
			continue
		}
		path := filepath.Join(pinDir, name)
		m, err := ebpf.LoadPinnedMap(path, nil)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return replaced, fmt.Errorf("load pinned %s: %w", name, err)
		}
		incompatible := ms.Compatible(m)
		m.Close()
		if incompatible == nil {
			continue
		}
		if err := os.Remove(path); err != nil {
			return replaced, fmt.Errorf("unpin %s: %w", name, err)
		}
		replaced = append(replaced, fmt.Sprintf("%s (%v)", name, incompatible))
	}
	slices.Sort(replaced)
	return replaced, nil
}

// PinDir is the bpffs directory holding the maps and links.
func (d *Datapath) PinDir() string { return d.pinDir }

// Map returns one of the shared maps by its lb.h name (Map* constants), for
// the tc programs to be loaded against the same instances; nil for an
// unknown name.
func (d *Datapath) Map(name string) *ebpf.Map {
	m := d.objs.sockMaps
	switch name {
	case MapServices:
		return m.LbServices
	case MapBackends:
		return m.LbBackends
	case MapAffinity:
		return m.LbAffinity
	case MapSockRev:
		return m.LbSockRev
	case MapConfig:
		return m.LbConfig
	}
	return nil
}

// Close releases the programs and maps held by this process. Pins stay, so
// Service traffic keeps flowing until the next agent opens them again.
func (d *Datapath) Close() error {
	if err := d.objs.Close(); err != nil {
		return fmt.Errorf("close datapath: %w", err)
	}
	return nil
}

// Upsert programs frontend f with s. A connect running at the same time
// sees either the old or the new service, never a slot that is not written
// yet: a growing frontend gets its new slots before its count, a shrinking
// one its count before its excess slots go.
func (d *Datapath) Upsert(f Frontend, s Service) error {
	key, err := keyOf(f)
	if err != nil {
		return fmt.Errorf("upsert: %w", err)
	}
	bes, val, err := encodeService(f, s)
	if err != nil {
		return fmt.Errorf("upsert: %w", err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()

	var old svcValue
	fresh := false
	if err := d.objs.LbServices.Lookup(key, &old); errors.Is(err, ebpf.ErrKeyNotExist) {
		id, err := d.ids.alloc()
		if err != nil {
			return fmt.Errorf("upsert %v: %w", f, err)
		}
		old, fresh = svcValue{ID: id}, true
	} else if err != nil {
		return fmt.Errorf("upsert %v: read %s: %w", f, MapServices, err)
	}
	fail := func(err error) error {
		if fresh {
			d.ids.free(old.ID)
		}
		return fmt.Errorf("upsert %v: %w", f, err)
	}

	keys := make([]backendKey, len(bes))
	for i := range bes {
		keys[i] = backendKey{ID: old.ID, Slot: uint32(i)}
	}
	if err := putAll(d.objs.LbBackends, keys, bes); err != nil {
		return fail(fmt.Errorf("write %s: %w", MapBackends, err))
	}
	val.ID = old.ID
	if err := d.objs.LbServices.Put(key, val); err != nil {
		return fail(fmt.Errorf("write %s: %w", MapServices, err))
	}
	var excess []backendKey
	for slot := uint32(len(bes)); slot < uint32(old.Count); slot++ {
		excess = append(excess, backendKey{ID: old.ID, Slot: slot})
	}
	if err := deleteAll(d.objs.LbBackends, excess); err != nil {
		return fmt.Errorf("upsert %v: delete excess slots: %w", f, err)
	}
	return nil
}

// Delete removes frontend f and its backends; a missing f is not an error.
func (d *Datapath) Delete(f Frontend) error {
	key, err := keyOf(f)
	if err != nil {
		return fmt.Errorf("delete: %w", err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	var old svcValue
	if err := d.objs.LbServices.Lookup(key, &old); errors.Is(err, ebpf.ErrKeyNotExist) {
		return nil
	} else if err != nil {
		return fmt.Errorf("delete %v: read %s: %w", f, MapServices, err)
	}
	// The frontend goes first, so no connect picks a slot being deleted.
	if err := d.objs.LbServices.Delete(key); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("delete %v: %w", f, err)
	}
	slots := make([]backendKey, old.Count)
	for i := range slots {
		slots[i] = backendKey{ID: old.ID, Slot: uint32(i)}
	}
	if err := deleteAll(d.objs.LbBackends, slots); err != nil {
		return fmt.Errorf("delete %v: backends: %w", f, err)
	}
	d.ids.free(old.ID)
	return nil
}

// List returns every programmed frontend, sorted by address, port,
// protocol and scope.
func (d *Datapath) List() ([]Entry, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return list(d.objs.LbServices, d.objs.LbBackends)
}

// ListPinned is List of the maps pinned under pinDir, read-only and without
// loading any program: for tools beside a running agent.
func ListPinned(pinDir string) ([]Entry, error) {
	var maps [2]*ebpf.Map
	for i, name := range []string{MapServices, MapBackends} {
		m, err := ebpf.LoadPinnedMap(filepath.Join(pinDir, name), &ebpf.LoadPinOptions{ReadOnly: true})
		if err != nil {
			return nil, fmt.Errorf("list: %w", err)
		}
		defer m.Close()
		maps[i] = m
	}
	return list(maps[0], maps[1])
}

func list(services, backends *ebpf.Map) ([]Entry, error) {
	svcs, err := dumpServices(services)
	if err != nil {
		return nil, fmt.Errorf("list: %w", err)
	}
	bes, err := dumpBackends(backends)
	if err != nil {
		return nil, fmt.Errorf("list: %w", err)
	}
	out := make([]Entry, 0, len(svcs))
	for k, v := range svcs {
		e := Entry{Frontend: k.frontend()}
		e.AffinityTimeout = time.Duration(v.AffinityTimeout) * time.Second
		e.HostOnly = v.Flags&svcHostOnly != 0
		e.NodeAddr = v.Flags&svcNodeAddr != 0
		for slot := uint32(0); slot < uint32(v.Count); slot++ {
			if b, ok := bes[backendKey{ID: v.ID, Slot: slot}]; ok {
				e.Backends = append(e.Backends, b.backend())
			}
		}
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b Entry) int { return compareFrontends(a.Frontend, b.Frontend) })
	return out, nil
}

func compareFrontends(a, b Frontend) int {
	return cmp.Or(a.Addr.Compare(b.Addr), cmp.Compare(a.Port, b.Port),
		cmp.Compare(a.Proto, b.Proto), cmp.Compare(a.Scope, b.Scope))
}

// rebuildIDs makes the allocator match lb_services, so a restarted agent
// keeps the ids (and with them the affinity entries) of what is programmed.
func (d *Datapath) rebuildIDs() error {
	svcs, err := dumpServices(d.objs.LbServices)
	if err != nil {
		return fmt.Errorf("rebuild frontend ids: %w", err)
	}
	d.ids = idAllocator{used: make(map[uint32]struct{}, len(svcs))}
	for _, v := range svcs {
		d.ids.used[v.ID] = struct{}{}
		d.ids.next = max(d.ids.next, v.ID)
	}
	return nil
}

// idAllocator hands out frontend ids. It moves forward rather than reusing
// the lowest free id, so a new frontend rarely inherits a deleted one's
// affinity entries (which the programs would anyway check against the
// slots).
type idAllocator struct {
	used map[uint32]struct{}
	next uint32
}

func (a *idAllocator) alloc() (uint32, error) {
	if len(a.used) >= 1<<31 {
		return 0, errors.New("out of frontend ids")
	}
	for {
		a.next++
		if a.next == 0 {
			a.next = 1
		}
		if _, ok := a.used[a.next]; !ok {
			a.used[a.next] = struct{}{}
			return a.next, nil
		}
	}
}

func (a *idAllocator) free(id uint32) { delete(a.used, id) }
