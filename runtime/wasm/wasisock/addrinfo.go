package wasisock

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"slices"
	"strconv"

	"github.com/tetratelabs/wazero/api"
)

// WasmEdge's getaddrinfo values: the errno extension (77..87), the
// ai_flags bits and the protocols.
const (
	errnoAIAgain    = 78
	errnoAIBadflag  = 79
	errnoAIFail     = 80
	errnoAIFamily   = 81
	errnoAIMemory   = 82
	errnoAINodata   = 83
	errnoAINoname   = 84
	errnoAIService  = 85
	errnoAISocktype = 86

	aiPassive     = 1 << 0
	aiCanonname   = 1 << 1
	aiNumerichost = 1 << 2
	aiNumericserv = 1 << 3
	aiAllFlags    = 1<<7 - 1

	protoIP  = 0
	protoTCP = 1
	protoUDP = 2

	// __wasi_addrinfo_t: flags u16 @0, family u8 @2, socktype u8 @3,
	// protocol @4, addrlen u32 @8, addr @12, canonname @16,
	// canonname_len u32 @20, next @24.
	addrinfoSize = 28
	// __wasi_sockaddr_t: family @0, sa_data_len u32 @4, sa_data @8.
	sockaddrSize = 12
)

type addrinfoHints struct {
	flags    uint16
	family   byte
	socktype byte
	protocol byte
}

type addrinfoResult struct {
	addr     netip.Addr
	socktype byte
	protocol byte
}

// sock_getaddrinfo(node, node_len, service, service_len, hints, res,
// max_res_len, result.res_len) -> errno
//
// res points to the guest address of its first __wasi_addrinfo_t; the
// records are chained by ai_next, and each brings its own sockaddr and
// sa_data buffer and canonical-name buffer, which are filled in. The chain
// is followed up to max_res_len records, up to a null ai_next or a record
// already visited.
func sockGetaddrinfo(ctx context.Context, t *Table, mod api.Module, stack []uint64) uint32 {
	mem := mod.Memory()
	node, ok := guestString(mem, arg(stack, 0), arg(stack, 1))
	if !ok {
		return errnoFault
	}
	service, ok := guestString(mem, arg(stack, 2), arg(stack, 3))
	if !ok {
		return errnoFault
	}
	hb, ok := mem.Read(arg(stack, 4), addrinfoSize)
	if !ok {
		return errnoFault
	}
	hints := addrinfoHints{flags: binary.LittleEndian.Uint16(hb), family: hb[2], socktype: hb[3], protocol: hb[4]}
	first, ok := mem.ReadUint32Le(arg(stack, 5))
	if !ok {
		return errnoFault
	}
	maxRes := arg(stack, 6)

	switch {
	case node == "" && service == "":
		return errnoAINoname
	case maxRes < 1:
		return errnoAIMemory
	case hints.flags&^aiAllFlags != 0, hints.flags&aiCanonname != 0 && node == "":
		return errnoAIBadflag
	case hints.family > afInet6:
		return errnoAIFamily
	case hints.socktype > sockStream:
		return errnoAISocktype
	case hints.protocol > protoUDP:
		return errnoNosys
	}

	results, errno := t.resolveAddrinfo(ctx, node, hints)
	if errno != errnoSuccess {
		return errno
	}
	port, errno := servicePort(service, hints)
	if errno != errnoSuccess {
		return errno
	}

	var records []uint32
	seen := map[uint32]bool{}
	for p := first; p != 0 && !seen[p] && uint32(len(records)) < maxRes; {
		seen[p] = true
		records = append(records, p)
		next, ok := mem.ReadUint32Le(p + 24)
		if !ok {
			return errnoFault
		}
		p = next
	}
	n := min(len(records), len(results))
	for i := 0; i < n; i++ {
		canon := ""
		if hints.flags&aiCanonname != 0 {
			canon = node
		}
		if errno := writeAddrinfo(mem, records[i], results[i], port, canon); errno != errnoSuccess {
			return errno
		}
	}
	if !mem.WriteUint32Le(arg(stack, 7), uint32(n)) {
		return errnoFault
	}
	return errnoSuccess
}

// guestString reads a string the guest passes with its length; C and Go
// guest libraries include a terminating NUL, which is not part of it.
func guestString(mem api.Memory, ptr, n uint32) (string, bool) {
	if n == 0 {
		return "", true
	}
	b, ok := mem.Read(ptr, n)
	if !ok {
		return "", false
	}
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b), true
}

// resolveAddrinfo lists the addresses of node for the hints, IPv4 first so
// that guests taking the first answer reach IPv4-only clusters, one record
// per address and socket type.
func (t *Table) resolveAddrinfo(ctx context.Context, node string, hints addrinfoHints) ([]addrinfoResult, uint32) {
	var addrs []netip.Addr
	switch {
	case node == "" && hints.flags&aiPassive != 0:
		addrs = []netip.Addr{netip.IPv4Unspecified(), netip.IPv6Unspecified()}
	case node == "":
		addrs = []netip.Addr{netip.AddrFrom4([4]byte{127, 0, 0, 1}), netip.IPv6Loopback()}
	default:
		if a, err := netip.ParseAddr(node); err == nil {
			addrs = []netip.Addr{a.Unmap()}
			break
		}
		if hints.flags&aiNumerichost != 0 {
			return nil, errnoAINoname
		}
		network := "ip"
		switch hints.family {
		case afInet4:
			network = "ip4"
		case afInet6:
			network = "ip6"
		}
		found, err := t.resolver.lookup(ctx, network, node)
		if err != nil {
			return nil, lookupErrno(err)
		}
		addrs = found
	}
	addrs = slices.DeleteFunc(slices.Clone(addrs), func(a netip.Addr) bool {
		a = a.Unmap()
		return (hints.family == afInet4 && !a.Is4()) || (hints.family == afInet6 && a.Is4())
	})
	if len(addrs) == 0 {
		return nil, errnoAINodata
	}
	slices.SortStableFunc(addrs, func(a, b netip.Addr) int {
		switch {
		case a.Unmap().Is4() == b.Unmap().Is4():
			return 0
		case a.Unmap().Is4():
			return -1
		}
		return 1
	})

	types := []byte{hints.socktype}
	if hints.socktype == 0 {
		types = []byte{sockStream, sockDgram}
	}
	var out []addrinfoResult
	for _, a := range addrs {
		for _, st := range types {
			proto := byte(protoTCP)
			if st == sockDgram {
				proto = protoUDP
			}
			out = append(out, addrinfoResult{addr: a.Unmap(), socktype: st, protocol: proto})
		}
	}
	return out, errnoSuccess
}

func lookupErrno(err error) uint32 {
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		switch {
		case dnsErr.IsNotFound:
			return errnoAINoname
		case dnsErr.IsTimeout, dnsErr.IsTemporary:
			return errnoAIAgain
		}
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return errnoCanceled
	}
	return errnoAIFail
}

// servicePort turns the service, a port number or a name from the
// services database, into a port.
func servicePort(service string, hints addrinfoHints) (int, uint32) {
	if service == "" {
		return 0, errnoSuccess
	}
	if p, err := strconv.ParseUint(service, 10, 16); err == nil {
		return int(p), errnoSuccess
	}
	if hints.flags&aiNumericserv != 0 {
		return 0, errnoAINoname
	}
	network := "tcp"
	if hints.socktype == sockDgram {
		network = "udp"
	}
	p, err := net.LookupPort(network, service)
	if err != nil {
		return 0, errnoAIService
	}
	return p, errnoSuccess
}

// writeAddrinfo fills the record at p. Its sa_data is laid out as Linux's
// sockaddr_in or sockaddr_in6 after the family, as WasmEdge does: the port
// in network order, then the IPv4 address and 8 zero bytes (14 bytes), or
// the flow label, the IPv6 address and the scope id (26 bytes), cut to the
// guest's buffer.
func writeAddrinfo(mem api.Memory, p uint32, r addrinfoResult, port int, canon string) uint32 {
	rec, ok := mem.Read(p, addrinfoSize)
	if !ok {
		return errnoFault
	}
	sa, ok := mem.Read(le32(rec[12:]), sockaddrSize)
	if !ok {
		return errnoFault
	}
	data, ok := mem.Read(le32(sa[8:]), le32(sa[4:]))
	if !ok {
		return errnoFault
	}
	var raw []byte
	family := uint32(afInet4)
	hostLen := uint32(16) // sizeof(struct sockaddr_in)
	if r.addr.Is4() {
		raw = make([]byte, 14)
		b := r.addr.As4()
		copy(raw[2:], b[:])
	} else {
		family, hostLen = afInet6, 28 // sizeof(struct sockaddr_in6)
		raw = make([]byte, 26)
		b := r.addr.As16()
		copy(raw[6:], b[:])
	}
	binary.BigEndian.PutUint16(raw, uint16(port))
	n := copy(data, raw)
	binary.LittleEndian.PutUint32(sa, family)
	binary.LittleEndian.PutUint32(sa[4:], uint32(n))

	binary.LittleEndian.PutUint16(rec, 0)
	rec[2] = byte(family)
	rec[3] = r.socktype
	binary.LittleEndian.PutUint32(rec[4:], uint32(r.protocol))
	binary.LittleEndian.PutUint32(rec[8:], hostLen)
	canonLen := uint32(0)
	if canon != "" {
		if buf, ok := mem.Read(le32(rec[16:]), le32(rec[20:])); ok && len(buf) > 0 {
			canonLen = uint32(copy(buf[:len(buf)-1], canon))
			buf[canonLen] = 0
		}
	}
	binary.LittleEndian.PutUint32(rec[20:], canonLen)
	return errnoSuccess
}
