#!/usr/bin/env bash
# Installs the Debian packages mayfly needs to build, test and benchmark. Idempotent: does
# nothing when everything is present. Needs root (or sudo) only when something is missing.
set -euo pipefail

packages=(build-essential cmake pkg-config libzstd-dev liblz4-dev libxxhash-dev libcmocka-dev
          libleveldb-dev gnuplot-nox librocksdb-dev)
if [ "${MAYFLY_SANITIZE_DEPS:-0}" = 1 ]; then
  packages+=(clang libclang-rt-14-dev)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "install-deps: installing ${missing[*]}"
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
