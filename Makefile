# crash-ext.  `make demo` and `make test` do all set-up on a fresh Debian 12 machine (root).
PY      ?= python3
VENV    := .venv
VPY     := $(VENV)/bin/python
CACHE   ?= $(HOME)/.cache/crash-ext
N       ?= 2000

.PHONY: all deps venv crash pykdump lab demo test unit bench compare docs clean lab-clean

all: test

deps:
	@tests/lab/deps.sh

$(VPY): requirements.txt requirements-dev.txt pyproject.toml
	$(PY) -m venv $(VENV)
	$(VPY) -m pip install -q --disable-pip-version-check -r requirements-dev.txt
	$(VPY) -m pip install -q --disable-pip-version-check --no-deps -e .
	@touch $(VPY)

venv: deps $(VPY)

crash: deps
	@tests/lab/build-crash.sh >/dev/null

# pykdump's mpykdump.so from the vendored source, against crash's kept tree (cached)
pykdump: crash
	@tests/lab/build-mpykdump.sh >/dev/null

SMALL   := --scenario seed --scenario abba-mutex --scenario cycle3 --scenario convoy \
           --scenario readers --scenario semaphore

lab: crash venv
	$(VPY) tests/lab/mklab.py --n $(N)
	$(VPY) tests/lab/mklab.py --kernel 6.12 $(SMALL)

demo: lab
	$(VPY) tests/lab/demo.py

test: lab pykdump
	$(VPY) -m pytest -q tests

unit: venv
	$(VPY) -m pytest -q tests/unit

bench: lab pykdump
	$(VPY) tests/bench.py

compare: lab
	$(VPY) -m tests.compare_drgn

docs: lab
	$(VPY) docs/make_walkthrough.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache

lab-clean:
	rm -rf $(CACHE)/lab $(CACHE)/run
