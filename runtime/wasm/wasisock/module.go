package wasisock

import (
	"context"
	"errors"
	"fmt"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
	"golang.org/x/sys/unix"
)

// WASI preview1 values used here (wasi_snapshot_preview1 witx).
const (
	errnoSuccess     = 0
	errnoAgain       = 6
	errnoBadf        = 8
	errnoFault       = 21
	errnoIntr        = 27
	errnoInval       = 28
	errnoIO          = 29
	errnoNotdir      = 54
	errnoNotsup      = 58
	errnoCanceled    = 11
	errnoConnrefused = 14
	errnoInprogress  = 26
	errnoNoprotoopt  = 50
	errnoNosys       = 52

	filetypeSocketDgram  = 5
	filetypeSocketStream = 6
	fdflagNonblock       = 4
	rightsAll            = 0x1FFFFFFF
)

// errnoOf maps the host errors a socket call can meet to WASI errno values.
var errnoOf = map[unix.Errno]uint32{
	unix.EACCES: 2, unix.EADDRINUSE: 3, unix.EADDRNOTAVAIL: 4, unix.EAFNOSUPPORT: 5,
	unix.EAGAIN: errnoAgain, unix.EALREADY: 7, unix.EBADF: errnoBadf, unix.ECONNABORTED: 13,
	unix.ECONNREFUSED: errnoConnrefused, unix.ECONNRESET: 15, unix.EDESTADDRREQ: 17,
	unix.EFAULT: errnoFault, unix.EHOSTUNREACH: 23, unix.EINPROGRESS: errnoInprogress,
	unix.EINTR: errnoIntr, unix.EINVAL: errnoInval, unix.EIO: errnoIO, unix.EISCONN: 30,
	unix.EMFILE: 33, unix.EMSGSIZE: 35, unix.ENETDOWN: 38, unix.ENETRESET: 39,
	unix.ENETUNREACH: 40, unix.ENFILE: 41, unix.ENOBUFS: 42, unix.ENOMEM: 48,
	unix.ENOPROTOOPT: errnoNoprotoopt, unix.ENOSYS: errnoNosys, unix.ENOTCONN: 53,
	unix.ENOTSOCK: 57, unix.EOPNOTSUPP: errnoNotsup, unix.EPERM: 63, unix.EPIPE: 64,
	unix.EPROTONOSUPPORT: 66, unix.EPROTOTYPE: 67, unix.ETIMEDOUT: 73,
}

func toErrno(err error) uint32 {
	var e unix.Errno
	if errors.As(err, &e) {
		if w, ok := errnoOf[e]; ok {
			return w
		}
		return errnoIO
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return errnoCanceled
	}
	return errnoIO
}

// hostFunc is one override: it handles the call when the descriptor is a
// socket of the guest's table, and returns handled=false otherwise.
type hostFunc func(ctx context.Context, t *Table, mod api.Module, stack []uint64) (handled bool)

// Instantiate instantiates wasi_snapshot_preview1 in r, with wazero's
// implementation for everything but the socket-capable functions. Guests
// get their sockets from the Table bound to their context by WithTable; a
// guest without one sees plain wazero behaviour.
func Instantiate(ctx context.Context, r wazero.Runtime) (api.Closer, error) {
	// Compile wazero's module once to take its Go functions, which the
	// overrides call for descriptors that are not sockets.
	base := r.NewHostModuleBuilder(wasi_snapshot_preview1.ModuleName)
	wasi_snapshot_preview1.NewFunctionExporter().ExportFunctions(base)
	compiled, err := base.Compile(ctx)
	if err != nil {
		return nil, fmt.Errorf("wasisock: compile wazero's WASI: %w", err)
	}
	defs := compiled.ExportedFunctions()
	defer compiled.Close(ctx)

	b := r.NewHostModuleBuilder(wasi_snapshot_preview1.ModuleName)
	wasi_snapshot_preview1.NewFunctionExporter().ExportFunctions(b)
	overrides := map[string]hostFunc{
		"poll_oneoff":         pollOneoff,
		"fd_read":             fdRead,
		"fd_write":            fdWrite,
		"fd_close":            fdClose,
		"fd_fdstat_get":       fdFdstatGet,
		"fd_fdstat_set_flags": fdFdstatSetFlags,
		"fd_filestat_get":     fdFilestatGet,
		"fd_prestat_get":      fdPrestatGet,
		"sock_accept":         sockAccept,
		"sock_recv":           sockRecv,
		"sock_send":           sockSend,
		"sock_shutdown":       sockShutdown,
	}
	for name, fn := range overrides {
		def, ok := defs[name]
		if !ok {
			return nil, fmt.Errorf("wasisock: wazero's WASI has no %s", name)
		}
		inner, ok := def.GoFunction().(api.GoModuleFunction)
		if !ok {
			return nil, fmt.Errorf("wasisock: wazero's %s is a %T, not a Go module function", name, def.GoFunction())
		}
		fn := fn
		b.NewFunctionBuilder().
			WithGoModuleFunction(api.GoModuleFunc(func(ctx context.Context, mod api.Module, stack []uint64) {
				if t := tableFrom(ctx); t != nil && fn(ctx, t, mod, stack) {
					return
				}
				inner.Call(ctx, mod, stack)
			}), def.ParamTypes(), def.ResultTypes()).
			WithParameterNames(def.ParamNames()...).
			Export(name)
	}
	for name, ext := range extensions() {
		if _, ok := defs[name]; ok {
			return nil, fmt.Errorf("wasisock: wazero's WASI now has %s; it must become an override", name)
		}
		fn := ext.fn
		params := make([]api.ValueType, len(ext.params))
		for i := range params {
			params[i] = api.ValueTypeI32
		}
		b.NewFunctionBuilder().
			WithGoModuleFunction(api.GoModuleFunc(func(ctx context.Context, mod api.Module, stack []uint64) {
				t := tableFrom(ctx)
				if t == nil {
					stack[0] = errnoNosys
					return
				}
				stack[0] = uint64(fn(ctx, t, mod, stack))
			}), params, []api.ValueType{api.ValueTypeI32}).
			WithParameterNames(ext.params...).
			Export(name)
	}
	mod, err := b.Instantiate(ctx)
	if err != nil {
		return nil, fmt.Errorf("wasisock: instantiate WASI: %w", err)
	}
	return mod, nil
}
