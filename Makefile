# Two entry points for a fresh machine: `make demo` and `make test`.
# Both set up what they need on first run (venv, packages, the model bundle).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.confroute-installed
ARGS ?=
# The Triton model environment (numpy<2) that tests and the demo start tritonserver with.
export CONFROUTE_TRITON_PYTHON ?= $(CURDIR)/.venv-triton/bin/python

.PHONY: demo test test-haswell lint setup lock clean-venv

$(STAMP): pyproject.toml scripts/setup.sh $(wildcard requirements/*.txt)
	PYTHON=$(PYTHON) VENV=$(VENV) bash scripts/setup.sh
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(PY) -m demo $(ARGS)

test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(PY) -m pytest $(ARGS)

# The real-model parity tests again in an x86-64 process that sees an AVX2-only CPU (qemu-x86_64 -cpu Haswell,
# Debian's qemu-user); slow, so not part of `make test`. See docs/parity.md.
test-haswell: $(STAMP)
	@command -v qemu-x86_64 >/dev/null || { echo "needs qemu-x86_64: apt-get install qemu-user"; exit 1; }
	$(PY) -m pytest -m haswell -s $(ARGS) tests/confroute/modelkit/test_parity_haswell.py

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

# Regenerates the hashed lock files in requirements/ from pyproject.toml (needs PyPI; see scripts/lock.sh).
lock: $(STAMP)
	PY=$(PY) bash scripts/lock.sh

clean-venv:
	rm -rf $(VENV)
