#!/usr/bin/env bash
# Runs a command inside the arm64 root under qemu-user, in a private mount namespace (nothing stays mounted):
# /proc and /dev from the host, SHARE bound at /mnt/confroute. The network is the host's, so 127.0.0.1 inside
# is the host's loopback. Usage: in_root.sh ROOT SHARE COMMAND...
set -euo pipefail
ROOT=${1:?usage: in_root.sh ROOT SHARE COMMAND...}
SHARE=${2:?usage: in_root.sh ROOT SHARE COMMAND...}
shift 2
if [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
  [ -e /proc/sys/fs/binfmt_misc/register ] || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
  update-binfmts --enable qemu-aarch64
fi
mkdir -p "$ROOT/mnt/confroute"
cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
# The root trusts what the host trusts (a network behind a TLS-inspecting proxy adds its CA there), and pip,
# which carries its own CA list, is pointed at that bundle.
cp /etc/ssl/certs/ca-certificates.crt "$ROOT/etc/ssl/certs/ca-certificates.crt"
# The inner script expands its own arguments, inside the new namespace:
# shellcheck disable=SC2016
exec unshare --mount --propagation private -- /bin/sh -c '
  set -e
  root=$1; share=$2; shift 2
  mount -t proc proc "$root/proc"
  mount --rbind /dev "$root/dev"
  mount --bind "$share" "$root/mnt/confroute"
  exec chroot "$root" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOME=/root LANG=C.UTF-8 PIP_CERT=/etc/ssl/certs/ca-certificates.crt \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt "$@"
' in_root "$ROOT" "$SHARE" "$@"
