#!/usr/bin/env bash
# Sets up a fresh machine for confroute: system packages, a virtual environment, the project and its extras.
# Idempotent; `make demo` and `make test` call it on first run (and when pyproject.toml changes).
set -euo pipefail
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
TRITON_VENV=${TRITON_VENV:-.venv-triton}

if ! command -v redis-server >/dev/null 2>&1; then
  echo "[setup] installing redis-server (tests start their own on free loopback ports)"
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq redis-server >/dev/null
fi

if [ ! -x "$VENV/bin/python" ]; then
  echo "[setup] creating virtual environment in $VENV"
  "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --upgrade pip
echo "[setup] installing confroute with edge, export, cloud, bench and dev extras (torch 2.13.0 CPU build)"
"$VENV/bin/python" -m pip install --quiet -e ".[edge,export,cloud,dev,bench]"
# tritonclient's declared pins (protobuf<7, ml-dtypes<=0.5.4) would break the stubs and onnx; its gRPC
# client works with the versions above (tested), so it is installed without its dependency list.
"$VENV/bin/python" -m pip install --quiet --no-deps "tritonclient==2.73.0"

# The bundled tritonserver's python-backend stub is built against numpy 1.x: models run in their own venv.
if [ ! -x "$TRITON_VENV/bin/python" ]; then
  echo "[setup] creating the Triton model environment in $TRITON_VENV (nvidia-pytriton, numpy<2)"
  "$PYTHON" -m venv "$TRITON_VENV"
fi
"$TRITON_VENV/bin/python" -m pip install --quiet --upgrade pip
"$TRITON_VENV/bin/python" -m pip install --quiet "nvidia-pytriton==0.7.0" "numpy<2"
# The bundle_llm model runs the confroute engine inside the stub: the edge runtime (numpy<2 kept) and
# confroute itself without its dependencies (its protobuf/grpc pins are for the wire, not the engine).
echo "[setup] installing the bundle_llm model's runtime in $TRITON_VENV (onnxruntime, tokenizers, jinja2, confroute)"
"$TRITON_VENV/bin/python" -m pip install --quiet "numpy<2" "onnxruntime>=1.20" "tokenizers>=0.20" "jinja2>=3.1"
"$TRITON_VENV/bin/python" -m pip install --quiet --no-deps -e .
echo "[setup] done"
