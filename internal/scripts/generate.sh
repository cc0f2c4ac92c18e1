#!/usr/bin/env bash
# Installs what regenerating the BPF objects needs (clang, llvm, libbpf's
# headers), once. A machine that already has them is left alone.
set -euo pipefail

want=(clang llvm libbpf-dev)
missing=()
for pkg in "${want[@]}"; do
	dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "generate: missing Debian packages: ${missing[*]} (run as root, or install them)" >&2
	exit 1
fi
echo "generate: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
