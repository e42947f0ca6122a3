# Two entry points for a fresh machine: `make demo` and `make test`.
# Both set up what they need on first run (venv, packages, the model bundle).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.confroute-installed
ARGS ?=
# The Triton model environment (numpy<2) that tests and the demo start tritonserver with.
export CONFROUTE_TRITON_PYTHON ?= $(CURDIR)/.venv-triton/bin/python

.PHONY: demo test lint setup clean-venv

$(STAMP): pyproject.toml scripts/setup.sh
	PYTHON=$(PYTHON) VENV=$(VENV) bash scripts/setup.sh
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(PY) -m demo $(ARGS)

test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(PY) -m pytest $(ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

clean-venv:
	rm -rf $(VENV)
