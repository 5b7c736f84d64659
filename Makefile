# `make demo` and `make test` create .venv and install everything they need.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Tests run on both cores; set JOBS=0 to run them in one process.
JOBS ?= 2
OUT ?= out
# The chapter page shows this `unisched chapter --out` folder if it is newer
# than the chapter; otherwise `make docs` runs the chapter (cached in
# build/docs).
CHAPTER_OUT ?= $(OUT)/chapter

.PHONY: demo test bench docs browser clean

# --no-compile: Python compiles what is imported, when it is first
# imported; pip would compile every file of every framework up front.
$(STAMP): setup.cfg setup.py pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --no-compile -e '.[all,test]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/unisched demo --out $(OUT)

# The distributed tests start 2-4 processes each: they run after the rest,
# one at a time, so that they never share the cores with other tests.
# Coverage (pyproject.toml: the core, the tools and the adapter contract,
# at least 95% of lines) is measured on the main suite.
test: $(STAMP)
	$(PY) -m pytest -n $(JOBS) -q --ignore=tests/distributed --cov
	$(PY) -m pytest -q tests/distributed

# The documentation site, offline, into site/ (warnings are errors).
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 UNISCHED_CHAPTER_OUT=$(CHAPTER_OUT) \
		$(VENV)/bin/mkdocs build --strict --site-dir site

# Debian's Chromium and its driver, for tests/docs (apt; never a browser
# download).  Does nothing where both are installed.
browser:
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; \
	then echo "chromium and chromedriver are installed"; else \
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install \
		-y --no-install-recommends chromium chromium-driver; fi

.PHONY: lint
# Lint and types: ruff with the rules in pyproject.toml, then mypy (strict
# on the core and the adapter contract, relaxed where [tool.mypy] says).
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

bench: $(STAMP)
	for b in benchmarks/*.py; do $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) $(OUT) *.egg-info site build/docs
