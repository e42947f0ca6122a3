#!/usr/bin/env bash
# Builds a Debian bookworm arm64 root (what 64-bit Raspberry Pi OS is based on) for the emulated tier:
# debootstrap runs the arm64 maintainer scripts through qemu-user (binfmt_misc, registered here if needed).
# Usage: build_root.sh ROOT. Writes ROOT/.confroute-root-ready when complete; a partial ROOT is rebuilt.
set -euo pipefail
ROOT=${1:?usage: build_root.sh ROOT}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
SUITE=${DEBIAN_SUITE:-bookworm}

if [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
  [ -e /proc/sys/fs/binfmt_misc/register ] || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
  update-binfmts --enable qemu-aarch64
fi
if [ -f "$ROOT/.confroute-root-ready" ]; then
  exit 0
fi
rm -rf "$ROOT"
mkdir -p "$(dirname "$ROOT")"
# minbase + what the Pi install script expects of Raspberry Pi OS Lite: python3 with venv and pip.
debootstrap --arch=arm64 --variant=minbase \
  --include=python3,python3-venv,python3-pip,ca-certificates \
  "$SUITE" "$ROOT" "$MIRROR"
cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
touch "$ROOT/.confroute-root-ready"
