package lb

// The tc programs' object and Go bindings (tc_bpfel.go, tc_bpfel.o) are
// committed; regenerate them with clang after changing ebpf/bpf/tc.c. The
// extra include path holds asm/types.h for Debian's multiarch layout.
//go:generate go run github.com/cilium/ebpf/cmd/bpf2go -cc clang -target bpfel -go-package lb tc ../bpf/tc.c -- -I../bpf -I/usr/include/x86_64-linux-gnu -O2 -g -Wall -Werror
