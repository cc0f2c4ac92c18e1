package lb

// The objects are committed, so building needs no clang; `make generate`
// rebuilds them after a change to ebpf/bpf. Both amd64 and arm64 are
// little-endian, so only bpfel objects are generated. The include paths are
// Debian's multiarch directories holding <asm/types.h>; a missing one is
// ignored.
//go:generate go run github.com/cilium/ebpf/cmd/bpf2go -target bpfel -no-global-types sock ../bpf/sock.c -- -O2 -g -Wall -Werror -I../bpf -I/usr/include/x86_64-linux-gnu -I/usr/include/aarch64-linux-gnu
