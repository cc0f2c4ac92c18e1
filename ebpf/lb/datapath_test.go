package lb

import (
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// replies counts the replies of successful calls and fails on any error or
// on a peer or source that is not want.
func replies(t *testing.T, res []childResult, wantPeer, wantFrom string) map[string]int {
	t.Helper()
	got := map[string]int{}
	for i, r := range res {
		if r.Err != "" {
			t.Fatalf("call %d: %s", i, r.Err)
		}
		if r.Peer != wantPeer {
			t.Fatalf("call %d: getpeername shows %q, want %q", i, r.Peer, wantPeer)
		}
		if r.From != wantFrom {
			t.Fatalf("call %d: reply came from %q, want %q", i, r.From, wantFrom)
		}
		got[r.Reply]++
	}
	return got
}

func TestTCPFrontend(t *testing.T) {
	e := newEnv(t)
	d := e.open(t)
	f := decoy(t, TCP)
	s := Service{Backends: []Backend{tcpBackend(t, "a"), tcpBackend(t, "b"), tcpBackend(t, "c")}}
	if err := d.Upsert(f, s); err != nil {
		t.Fatal(err)
	}
	got := replies(t, e.run(t, childOp{Kind: "tcp", Target: f.target(), N: 100}), f.target(), "")
	for _, name := range []string{"a", "b", "c"} {
		if got[name] == 0 {
			t.Errorf("backend %s never chosen in 100 connects: %v", name, got)
		}
	}
	if got["decoy"] != 0 {
		t.Errorf("%d connects were not translated", got["decoy"])
	}
}

func TestUDPFrontend(t *testing.T) {
	e := newEnv(t)
	d := e.open(t)
	f := decoy(t, UDP)
	if err := d.Upsert(f, Service{Backends: []Backend{udpBackend(t, "a"), udpBackend(t, "b")}}); err != nil {
		t.Fatal(err)
	}
	got := replies(t, e.run(t, childOp{Kind: "udp", Target: f.target(), N: 40}), "", f.target())
	if got["a"] == 0 || got["b"] == 0 || len(got) != 2 {
		t.Errorf("unconnected UDP replies %v, want both backends", got)
	}
	got = replies(t, e.run(t, childOp{Kind: "udpconn", Target: f.target(), N: 10}), f.target(), f.target())
	if got["a"]+got["b"] != 10 {
		t.Errorf("connected UDP replies %v, want only backends", got)
	}
}

func TestNoBackendsRefuses(t *testing.T) {
	e := newEnv(t)
	d := e.open(t)
	// The decoy listens on the frontend itself: only the hook can refuse.
	tf, uf := decoy(t, TCP), decoy(t, UDP)
	for _, f := range []Frontend{tf, uf} {
		if err := d.Upsert(f, Service{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, op := range []childOp{{Kind: "tcp", Target: tf.target(), N: 3}, {Kind: "udp", Target: uf.target(), N: 3}} {
		for _, r := range e.run(t, op) {
			if unix.Errno(r.Errno) != unix.ECONNREFUSED {
				t.Errorf("%s to a frontend without backends: %+v, want ECONNREFUSED", op.Kind, r)
			}
		}
	}
}

func TestAffinity(t *testing.T) {
	e := newEnv(t)
	d := e.open(t)
	f := decoy(t, TCP)
	bes := map[string]Backend{"a": tcpBackend(t, "a"), "b": tcpBackend(t, "b"), "c": tcpBackend(t, "c")}
	s := Service{Backends: []Backend{bes["a"], bes["b"], bes["c"]}, AffinityTimeout: time.Hour}
	if err := d.Upsert(f, s); err != nil {
		t.Fatal(err)
	}
	first := replies(t, e.run(t, childOp{Kind: "tcp", Target: f.target(), N: 30}), f.target(), "")
	if len(first) != 1 {
		t.Fatalf("with affinity, 30 connects went to %v, want one backend", first)
	}
	var chosen string
	for name := range first {
		chosen = name
	}
	// Without the chosen backend the client must move, and stay, elsewhere.
	s.Backends = nil
	for _, name := range []string{"a", "b", "c"} {
		if name != chosen {
			s.Backends = append(s.Backends, bes[name])
		}
	}
	if err := d.Upsert(f, s); err != nil {
		t.Fatal(err)
	}
	second := replies(t, e.run(t, childOp{Kind: "tcp", Target: f.target(), N: 30}), f.target(), "")
	if len(second) != 1 || second[chosen] != 0 {
		t.Fatalf("after removing %s, 30 connects went to %v, want one other backend", chosen, second)
	}
}

func TestUpsertShrinkGrowDelete(t *testing.T) {
	e := newEnv(t)
	d := e.open(t)
	f := decoy(t, TCP)
	a, b, c := tcpBackend(t, "a"), tcpBackend(t, "b"), tcpBackend(t, "c")
	check := func(bes []Backend, wantReplies ...string) {
		t.Helper()
		if err := d.Upsert(f, Service{Backends: bes}); err != nil {
			t.Fatal(err)
		}
		assertEntries(t, d, []Entry{{Frontend: f, Service: Service{Backends: bes}}})
		assertSlots(t, d, len(bes))
		got := replies(t, e.run(t, childOp{Kind: "tcp", Target: f.target(), N: 40}), f.target(), "")
		for _, name := range wantReplies {
			if got[name] == 0 {
				t.Errorf("backends %v: %s never chosen: %v", bes, name, got)
			}
		}
		if len(got) != len(wantReplies) {
			t.Errorf("backends %v: replies %v", bes, got)
		}
	}
	check([]Backend{a, b, c}, "a", "b", "c")
	check([]Backend{b}, "b")
	check([]Backend{c, a}, "c", "a")

	for range 2 { // a second Delete is not an error
		if err := d.Delete(f); err != nil {
			t.Fatal(err)
		}
	}
	assertEntries(t, d, nil)
	assertSlots(t, d, 0)
	got := replies(t, e.run(t, childOp{Kind: "tcp", Target: f.target(), N: 3}), f.target(), "")
	if got["decoy"] != 3 {
		t.Errorf("after Delete the frontend is still translated: %v", got)
	}
}

func assertEntries(t *testing.T, d *Datapath, want []Entry) {
	t.Helper()
	got, err := d.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(got) == 0 && len(want) == 0 {
		return
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("List:\n got %+v\nwant %+v", got, want)
	}
	// What a tool beside the agent reads from the pins is the same.
	pinned, err := ListPinned(d.PinDir())
	if err != nil || !reflect.DeepEqual(pinned, got) {
		t.Fatalf("ListPinned = %+v, %v; List = %+v", pinned, err, got)
	}
}

// assertSlots checks that lb_backends holds exactly n entries: nothing is
// left behind by a shrink or a delete.
func assertSlots(t *testing.T, d *Datapath, n int) {
	t.Helper()
	slots, err := dumpBackends(d.Map(MapBackends))
	if err != nil {
		t.Fatal(err)
	}
	if len(slots) != n {
		t.Fatalf("lb_backends holds %d slots, want %d: %v", len(slots), n, slots)
	}
}

func frontends(n int, base byte, backends int) map[Frontend]Service {
	want := make(map[Frontend]Service, n)
	for i := range n {
		f := Frontend{Addr: netip.AddrFrom4([4]byte{10, base, byte(i >> 8), byte(i)}), Port: 80, Proto: TCP}
		var s Service
		for j := range backends {
			s.Backends = append(s.Backends, Backend{Addr: netip.AddrFrom4([4]byte{10, 200, byte(i >> 8), byte(i)}), Port: uint16(8000 + j)})
		}
		want[f] = s
	}
	return want
}

func TestReconcile(t *testing.T) {
	e := newEnv(t)
	d := e.open(t)
	want := frontends(50, 96, 3)
	// A frontend Reconcile must remove, and one it must keep.
	stale := Frontend{Addr: netip.MustParseAddr("10.97.0.1"), Port: 53, Proto: UDP}
	if err := d.Upsert(stale, Service{Backends: []Backend{{Addr: netip.MustParseAddr("10.1.1.1"), Port: 53}}}); err != nil {
		t.Fatal(err)
	}
	f := decoy(t, TCP)
	want[f] = Service{Backends: []Backend{tcpBackend(t, "a")}}
	if err := d.Upsert(f, want[f]); err != nil {
		t.Fatal(err)
	}
	reconcile := func(wantChanged int) {
		t.Helper()
		n, err := d.Reconcile(want)
		if err != nil {
			t.Fatal(err)
		}
		if n != wantChanged {
			t.Fatalf("Reconcile changed %d frontends, want %d", n, wantChanged)
		}
		var entries []Entry
		slots := 0
		for f, s := range want {
			entries = append(entries, Entry{Frontend: f, Service: s})
			slots += len(s.Backends)
		}
		sortEntries(entries)
		assertEntries(t, d, entries)
		assertSlots(t, d, slots)
	}
	reconcile(51) // 50 added, stale removed
	reconcile(0)

	var i int
	for f, s := range want {
		switch {
		case f.Port != 80:
			continue
		case i < 2: // shrink
			want[f] = Service{Backends: s.Backends[:1]}
		case i < 4: // affinity only
			want[f] = Service{Backends: s.Backends, AffinityTimeout: 3 * time.Hour}
		case i < 7:
			delete(want, f)
		default:
			continue
		}
		i++
	}
	want[Frontend{Addr: netip.MustParseAddr("10.98.0.1"), Port: 443, Proto: TCP, Scope: ScopeExternal}] = Service{}
	reconcile(8)
	reconcile(0)

	got := replies(t, e.run(t, childOp{Kind: "tcp", Target: f.target(), N: 3}), f.target(), "")
	if got["a"] != 3 {
		t.Errorf("a frontend Reconcile kept no longer translates: %v", got)
	}
}

func sortEntries(es []Entry) {
	slices.SortFunc(es, func(a, b Entry) int { return compareFrontends(a.Frontend, b.Frontend) })
}

// hookCounts returns how many programs each socket hook has on the cgroup.
func hookCounts(t *testing.T, e *testEnv) map[ebpf.AttachType]int {
	t.Helper()
	out := map[ebpf.AttachType]int{}
	for _, at := range []ebpf.AttachType{ebpf.AttachCGroupInet4Connect, ebpf.AttachCGroupUDP4Sendmsg,
		ebpf.AttachCGroupUDP4Recvmsg, ebpf.AttachCgroupInet4GetPeername} {
		res, err := link.QueryPrograms(link.QueryOptions{Target: e.cgFD, Attach: at})
		if err != nil {
			t.Fatal(err)
		}
		out[at] = len(res.Programs)
	}
	return out
}

func TestRestartAndRemove(t *testing.T) {
	e := newEnv(t)
	d1 := e.open(t)
	f := decoy(t, TCP)
	s := Service{Backends: []Backend{tcpBackend(t, "a"), tcpBackend(t, "b")}, AffinityTimeout: 10 * time.Second}
	if err := d1.Upsert(f, s); err != nil {
		t.Fatal(err)
	}
	if err := d1.AttachCgroup(e.cgroup); err != nil { // idempotent
		t.Fatal(err)
	}

	// An agent restart: a second Datapath on the same pins, then the
	// first goes away.
	d2, err := Open(e.pinDir)
	if err != nil {
		t.Fatal(err)
	}
	defer d2.Close()
	assertEntries(t, d2, []Entry{{Frontend: f, Service: s}})
	if err := d2.AttachCgroup(e.cgroup); err != nil {
		t.Fatal(err)
	}
	for at, n := range hookCounts(t, e) {
		if n != 1 {
			t.Errorf("hook %v has %d programs after a restart, want 1", at, n)
		}
	}
	// The links now run the second Datapath's programs.
	res, err := link.QueryPrograms(link.QueryOptions{Target: e.cgFD, Attach: ebpf.AttachCGroupInet4Connect})
	if err != nil {
		t.Fatal(err)
	}
	info, err := d2.objs.LbConnect4.Info()
	if err != nil {
		t.Fatal(err)
	}
	if id, _ := info.ID(); len(res.Programs) != 1 || res.Programs[0].ID != id {
		t.Errorf("connect4 runs %+v, want the second Datapath's program %d", res.Programs, id)
	}
	if err := d1.Close(); err != nil {
		t.Fatal(err)
	}
	got := replies(t, e.run(t, childOp{Kind: "tcp", Target: f.target(), N: 10}), f.target(), "")
	if got["a"]+got["b"] != 10 {
		t.Fatalf("after the restart: %v", got)
	}
	// The restarted agent's ids continue: a new frontend does not take
	// the first one's slots.
	g := decoy(t, TCP)
	if err := d2.Upsert(g, Service{Backends: []Backend{tcpBackend(t, "c")}}); err != nil {
		t.Fatal(err)
	}
	assertSlots(t, d2, 3)
	got = replies(t, e.run(t, childOp{Kind: "tcp", Target: f.target(), N: 10}), f.target(), "")
	if got["a"]+got["b"] != 10 {
		t.Fatalf("first frontend after adding another: %v", got)
	}

	if err := Remove(e.pinDir); err != nil {
		t.Fatal(err)
	}
	if err := Remove(e.pinDir); err != nil {
		t.Fatal(fmt.Errorf("second Remove: %w", err))
	}
	for at, n := range hookCounts(t, e) {
		if n != 0 {
			t.Errorf("hook %v has %d programs after Remove, want 0", at, n)
		}
	}
	got = replies(t, e.run(t, childOp{Kind: "tcp", Target: f.target(), N: 3}), f.target(), "")
	if got["decoy"] != 3 {
		t.Errorf("after Remove connects are still translated: %v", got)
	}
}
