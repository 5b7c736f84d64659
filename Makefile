# `make demo` and `make test` create .venv and install everything they need.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Tests run on both cores; set JOBS=0 to run them in one process.
JOBS ?= 2
OUT ?= out

.PHONY: demo test bench clean

$(STAMP): setup.cfg setup.py pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -e '.[all,test]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/unisched demo --out $(OUT)

test: $(STAMP)
	$(PY) -m pytest -n $(JOBS) -q

.PHONY: lint
# Lint and types: ruff with the rules in pyproject.toml, then mypy (strict
# on the core and the adapter contract, relaxed where [tool.mypy] says).
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

bench: $(STAMP)
	for b in benchmarks/*.py; do $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) $(OUT) *.egg-info
