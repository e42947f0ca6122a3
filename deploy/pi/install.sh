#!/usr/bin/env bash
# Installs the confroute edge agent on a device from a built wheel (not a checkout): a Raspberry Pi with
# 64-bit Raspberry Pi OS (Debian bookworm arm64), or a Jetson without containers (--unit, --onnxruntime).
#
#   sudo deploy/pi/install.sh --wheel dist/confroute-0.1.0-py3-none-any.whl --bundle ./bundle-q8 \
#        [--constraints requirements.lock] [--onnxruntime SPEC --index-url URL] [--unit FILE] [--no-start]
#
# What it does, idempotently: a venv in $PREFIX/venv with the wheel and its edge extra (PyPI's aarch64
# wheels; pinned by --constraints when given), the bundle copied to $PREFIX/bundle, /etc/confroute with an
# env file to fill in (kept if present), and the systemd unit, enabled and started when systemd runs.
set -euo pipefail

PREFIX=/opt/confroute
ETC=/etc/confroute
UNIT_NAME=confroute-edge.service
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
WHEEL="" BUNDLE="" CONSTRAINTS="" ORT="" INDEX_URL="" UNIT="$HERE/$UNIT_NAME" START=1

usage() {
  sed -n '2,11p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

while [ $# -gt 0 ]; do
  case "$1" in
    --wheel) WHEEL=$2; shift 2 ;;
    --bundle) BUNDLE=$2; shift 2 ;;
    --constraints) CONSTRAINTS=$2; shift 2 ;;
    --onnxruntime) ORT=$2; shift 2 ;;
    --index-url) INDEX_URL=$2; shift 2 ;;
    --unit) UNIT=$2; shift 2 ;;
    --prefix) PREFIX=$2; shift 2 ;;
    --no-start) START=0; shift ;;
    -h|--help) usage ;;
    *) echo "install.sh: unknown option $1" >&2; usage ;;
  esac
done

log() { echo "[confroute-edge] $*"; }
die() { echo "[confroute-edge] error: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root (it writes $PREFIX, $ETC and /etc/systemd/system)"
if [ -z "$WHEEL" ] || [ ! -f "$WHEEL" ]; then die "--wheel must name a built confroute wheel (python -m build)"; fi
[ -z "$BUNDLE" ] || [ -f "$BUNDLE/manifest.json" ] || die "--bundle $BUNDLE has no manifest.json"
[ -z "$ORT" ] || [ -n "$INDEX_URL" ] || die "--onnxruntime needs --index-url (the index that builds it)"
[ -f "$UNIT" ] || die "no unit file $UNIT"

if ! python3 -c 'import sys, venv; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
  if command -v apt-get >/dev/null 2>&1; then
    log "installing python3 and python3-venv"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-venv >/dev/null
  fi
  python3 -c 'import sys, venv; sys.exit(sys.version_info < (3, 10))' || die "needs Python >= 3.10 with venv"
fi

if [ ! -x "$PREFIX/venv/bin/python" ]; then
  log "creating $PREFIX/venv"
  mkdir -p "$PREFIX"
  python3 -m venv "$PREFIX/venv"
fi
PIP=("$PREFIX/venv/bin/python" -m pip --disable-pip-version-check --no-input)
pin=()
[ -z "$CONSTRAINTS" ] || pin=(--constraint "$CONSTRAINTS")
wheel_path=$(cd "$(dirname "$WHEEL")" && pwd)/$(basename "$WHEEL")
log "installing $(basename "$WHEEL") with the edge extra"
# --force-reinstall --no-deps first: the same version rebuilt must replace the old files.
"${PIP[@]}" install --quiet --force-reinstall --no-deps "$wheel_path"
"${PIP[@]}" install --quiet "${pin[@]}" "${wheel_path}[edge]"
if [ -n "$ORT" ]; then
  log "replacing onnxruntime with $ORT"
  "${PIP[@]}" uninstall --quiet -y onnxruntime
  "${PIP[@]}" install --quiet --index-url "$INDEX_URL" "$ORT"
fi

if [ -n "$BUNDLE" ]; then
  log "installing the bundle $(basename "$BUNDLE") in $PREFIX/bundle"
  rm -rf "$PREFIX/bundle.new"
  cp -R "$BUNDLE" "$PREFIX/bundle.new"
  chmod -R u=rwX,go=rX "$PREFIX/bundle.new"
  rm -rf "$PREFIX/bundle.old"
  if [ -d "$PREFIX/bundle" ]; then mv "$PREFIX/bundle" "$PREFIX/bundle.old"; fi
  mv "$PREFIX/bundle.new" "$PREFIX/bundle"
  rm -rf "$PREFIX/bundle.old"
fi

install -d -m 0755 "$ETC" "$ETC/keys"
install -d -m 0700 "$ETC/tls"
if [ ! -f "$ETC/edge.env" ]; then
  install -m 0600 "$HERE/edge.env.example" "$ETC/edge.env"
  log "wrote $ETC/edge.env: set CONFROUTE_EDGE_CLOUD and the cohort there (docs/provisioning.md)"
fi
install -m 0644 "$UNIT" "/etc/systemd/system/$UNIT_NAME"

if [ "$START" = 1 ] && [ -d /run/systemd/system ]; then
  systemctl daemon-reload
  systemctl enable --now "$UNIT_NAME"
  log "started $UNIT_NAME (journalctl -u $UNIT_NAME)"
else
  log "installed $UNIT_NAME; start it with: systemctl enable --now $UNIT_NAME"
fi
"$PREFIX/venv/bin/edge-agent" --version
