#!/usr/bin/env bash
# Installs the Debian packages the node and the tests use, once, or the ones
# named as arguments. A machine that already has them is left alone.
set -euo pipefail

want=(containerd runc iproute2 busybox-static iptables nftables)
[ $# -gt 0 ] && want=("$@")
missing=()
for pkg in "${want[@]}"; do
	dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "deps: missing Debian packages: ${missing[*]} (run as root, or install them)" >&2
	exit 1
fi
echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
