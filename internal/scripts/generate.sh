#!/usr/bin/env bash
# Installs what regenerating the BPF objects needs (clang, llvm, libbpf's
# headers), once. A machine that already has them is left alone.
set -euo pipefail
exec "$(dirname "$0")/deps.sh" clang llvm libbpf-dev
