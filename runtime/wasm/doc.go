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
// An idle sandbox should cost little memory, and a node runs many
// sandboxes of one image, each a process of its own. wazero is built for
// one process running many modules, so Compile and Run work around five of
// its habits (figures for a Go net/http guest of 9 MB):
//
//   - Compiled code. wazero's cache loader copies a module's compiled code
//     (36 MB) from the cache file into an anonymous executable mapping, a
//     private copy per process. Right after wazero loaded the module,
//     before any instance runs, Compile finds that code among the
//     executable anonymous regions that appeared (/proc/self/maps, with
//     the length and first bytes the cache file gives), writes it once to
//     a file of the digest's cache directory named by its length and
//     checksum, checks the file's bytes equal it, and maps the file
//     privately, read-only and executable, over it (MAP_FIXED). The page
//     cache holds one copy for every sandbox of the node, and only the
//     pages the guest runs are resident. The cache file itself cannot be
//     mapped: its code does not start at a page boundary. wazero's munmap
//     on close works on the file mapping as on its own.
//   - Function bodies. wazero keeps the decoded module's bodies (5.8 MB)
//     for the module's life but reads them only to compile; Compile frees
//     them.
//   - Data segments. Go's linker emits a segment per stretch of non-zero
//     data (93,000), kept as a record and two allocations each (5 MB
//     beyond the 2.4 MB of data). Compile merges those that follow each
//     other, when that cannot change an instance's memory, and reads the
//     merged data from a shared file of the cache directory.
//   - Data in linear memory. wazero copies the data segments into every
//     instance's memory, so all the pages they cover (4.1 MB) are the
//     process's own, although the guest writes few of them. When the
//     data fit the memory's minimum size, Compile writes them once as an
//     image of those pages to a shared file and empties wazero's data
//     section; each instance's memory maps the file privately over those
//     pages before the guest runs (copies it when the memory is not a
//     mapping). A page stays the page cache's one copy until the guest
//     writes it: 44 kB of the 3.5 MB an idle net/http guest reads.
//   - Linear memory. wazero grows its memory, a Go slice, by append: all
//     of it resident and copied at each grow. Each Run reserves the
//     memory's possible size as address space and makes it writable in
//     place as the guest grows, so only the pages the guest touches cost.
//
// Compiled code, bodies and data reach into wazero's internals (its cache file layout,
// unexported fields by reflection); each checks what it finds, and any
// failure leaves wazero's own way, which runs the same
// (Module.SharedCode reports it).
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
// A preopen is confined to its host directory. wazero's own directory
// mounts follow symbolic links on the host, so a link inside a writable
// preopen, made by the guest or by another container sharing the volume,
// absolute or full of "..", would let the guest, run by an agent that is
// root, read and write any host file. Instead every path the guest names
// is resolved by openat2(2) with RESOLVE_IN_ROOT beneath a descriptor of
// the preopen's directory: links and ".." resolve as if that directory
// were the root of the file system, so the module sees nothing outside its
// preopens. Operations on a name (mkdir, unlink, rename, symlink, ...)
// act in the parent directory so resolved and never follow the name.
//
// Sockets come from package wasisock, whose WASI preview1 host module every
// Module uses (it behaves as wazero's for a guest without sockets). A Run
// WithSockets sees the table's listeners as fds 3, 4, ... and its
// preopened directories after them.
package wasm
