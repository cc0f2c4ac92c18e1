// Package wasm runs a container's WebAssembly module: a WASI preview1
// command, compiled and run by wazero.
//
// A Runtime owns the on-disk compilation cache, one directory per image
// digest, so a second pod from the same image, or a restart of the node
// agent, loads the compiled code instead of compiling again. A Module is one
// compiled module with the container's memory limit; each Run of it is a new
// instance with its own argv, environment, preopened directories, stdio and
// clocks, so exec and exec probes are further Runs of the same Module.
//
// A Run ends in one of four ways, reported in its Result:
//
//   - Exited: the guest returned from _start (exit code 0) or called
//     proc_exit(n) (exit code n).
//   - Trapped: the guest trapped (unreachable, out-of-bounds access, ...).
//     The exit code is 134, as for a process killed by SIGABRT.
//   - OOMKilled: the guest asked for linear memory beyond its limit and then
//     failed (it exited non-zero or trapped). The exit code is 137, as for a
//     container the kernel's OOM killer ended.
//   - Killed: the Run's context was cancelled or its deadline passed; the
//     guest is stopped wherever it is, including in a sleep. The exit code is
//     137, as for SIGKILL.
//
// Preopens are wazero's directory mounts. wazero follows symbolic links
// on the host, so a link inside a preopen (which another container sharing
// the volume could create) reaches outside it: preopens do not yet confine
// a guest against links.
//
// Sockets are not part of this package.
package wasm
