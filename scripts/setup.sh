#!/usr/bin/env bash
# Sets up a fresh machine for confroute: system packages, a virtual environment, the project and its extras.
# Idempotent; `make demo` and `make test` call it on first run (and when pyproject.toml changes).
set -euo pipefail
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}

if [ ! -x "$VENV/bin/python" ]; then
  echo "[setup] creating virtual environment in $VENV"
  "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --upgrade pip
echo "[setup] installing confroute with edge, export and dev extras (torch 2.13.0 CPU build)"
"$VENV/bin/python" -m pip install --quiet -e ".[edge,export,dev]"
echo "[setup] done"
