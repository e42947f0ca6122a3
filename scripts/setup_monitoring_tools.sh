#!/usr/bin/env bash
# Installs what the monitoring tests need (tests/cloud_service/ops): Debian's `prometheus` package, which
# brings `prometheus` and `promtool` (alert rules checked, unit-tested, and evaluated against a scraped
# service); with --browser, Debian's `chromium` and `chromium-driver` for the dashboard test. Without them
# those tests skip, saying which tool is missing. Idempotent; run as root or with sudo available.
set -euo pipefail

BROWSER=0
for arg in "$@"; do
  case "$arg" in
    --browser) BROWSER=1 ;;
    *) echo "usage: $0 [--browser]" >&2; exit 2 ;;
  esac
done

if [ "$(id -u)" = 0 ]; then SUDO=(); else SUDO=(sudo); fi
packages=()
command -v promtool >/dev/null 2>&1 && command -v prometheus >/dev/null 2>&1 || packages+=(prometheus)
if [ "$BROWSER" = 1 ]; then
  command -v chromium >/dev/null 2>&1 || packages+=(chromium)
  command -v chromedriver >/dev/null 2>&1 || packages+=(chromium-driver)
fi
if [ "${#packages[@]}" -gt 0 ]; then
  "${SUDO[@]}" apt-get update -qq
  # The package's own prometheus service is not wanted: the tests start their own on loopback.
  DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
fi
promtool --version | head -1
