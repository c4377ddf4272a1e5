# crash-ext.  `make demo` and `make test` do all set-up on a fresh Debian 12 machine (root).
PY      ?= python3
VENV    := .venv
VPY     := $(VENV)/bin/python
CACHE   ?= $(HOME)/.cache/crash-ext
N       ?= 2000
# Progress lines of the lab scripts count time from here ([m:ss]).
export CRASH_EXT_T0 ?= $(shell date +%s)

# The kernel matrix (tests/lab/labdumps.py KERNELS).  `make test` stages and tests
# TEST_KERNELS: every kernel of the matrix a crash of the lab reads (6.1 always: the
# demo's and scale's kernel); `make test-all` also stages sid's 7.x, which no crash here
# reads yet (labdumps.UNREADABLE).  The exact kernels and crash sources are pinned in
# tests/lab/lab.lock; `make lab-update` moves them forward and remakes the docs.
KERNELS      ?= 5.10 6.1 6.1-rt 6.12 6.12-rt 7
TEST_KERNELS ?= 5.10,6.1,6.1-rt,6.12,6.12-rt
CRASHES      ?= 8.0.6 9.0.2
comma        := ,
LAB_KERNELS   = $(if $(filter all,$(TEST_KERNELS)),$(KERNELS),$(subst $(comma), ,$(TEST_KERNELS)))

.PHONY: all deps venv crash crashes kernel lab lab-update demo test test-all test-incrash unit \
        explore fuzz bench compare docs fresh clean lab-clean

all: test

deps:
	@tests/lab/deps.sh

$(VPY): requirements.txt requirements-dev.txt requirements-build.txt pyproject.toml
	@bash -c '. tests/lab/log.sh; lab_log venv "$(VENV): pinned requirements from PyPI"'
	@$(PY) -m venv $(VENV)
	@$(VPY) -m pip install -q --disable-pip-version-check -r requirements-dev.txt
	@$(VPY) -m pip install -q --disable-pip-version-check --no-deps -e .
	@$(VPY) -m pip download -q --disable-pip-version-check --no-deps -d $(CACHE)/wheels \
	    -r requirements-build.txt
	@touch $(VPY)

venv: deps $(VPY)

# crash 8.0.6 (the demo's); `crashes`: every version the lab tests with, and Debian 12's
# packaged crash 8.0.2 (tests/test_cli.py checks it is refused)
crash: deps
	@tests/lab/build-crash.sh >/dev/null

crashes: deps
	@for v in $(CRASHES); do tests/lab/build-crash.sh $$v >/dev/null || exit 1; done
	@tests/lab/fetch-crash-deb.sh bookworm >/dev/null

kernel: deps
	@tests/lab/fetch-kernel.sh 6.1 >/dev/null


# Every dump a test reads: 6.1's all (scale with N tasks), the others' small scenarios,
# and 6.12's waits that are not locks (tests/test_waits_lab.py, test_json_schema_lab.py).
lab: deps
	@$(MAKE) --no-print-directory -j3 crashes venv kernel
	@$(VPY) tests/lab/mklab.py --n $(N) >/dev/null
	@for k in $(filter-out 6.1,$(LAB_KERNELS)); do \
	    $(VPY) tests/lab/mklab.py --kernel $$k --small >/dev/null || exit 1; done
	@for k in $(filter 6.12,$(LAB_KERNELS)); do $(VPY) tests/lab/mklab.py --kernel $$k \
	    --scenario flush-work --scenario kthread-stop --scenario flush-wq >/dev/null || exit 1; done

# Move the lab's pinned inputs to today's newest kernels and crash sources (reads the
# package indexes; rewrites tests/lab/lab.lock), then rebuild the lab and the docs from
# them.  Commit the new lock with the docs.
lab-update: deps
	@tests/lab/lock-update.sh
	@$(MAKE) --no-print-directory lab docs TEST_KERNELS=all

# The demo builds only what it shows: crash and the 6.1 seed dump (crash compiles while
# the kernel downloads).
demo: deps
	@$(MAKE) --no-print-directory -j3 crash venv kernel
	@$(VPY) tests/lab/demo.py

# The in-crash tests (tests/test_real_pykdump.py) and benchmarks run inside crash with the
# real pykdump: the mpykdump.so you bring, MPYKDUMP=/path/to/mpykdump.so (nothing here
# builds pykdump).  Without it they are skipped, counted and said so (-rs).
MPYKDUMP ?=
export MPYKDUMP

test: lab
	CRASH_EXT_KERNELS=$(TEST_KERNELS) $(VPY) -m pytest -q -rs tests

test-incrash: crash venv
	@test -n "$(MPYKDUMP)" || { echo "make test-incrash: name your mpykdump.so:" \
	    "make test-incrash MPYKDUMP=/path/to/mpykdump.so" >&2; exit 2; }
	CRASH_EXT_KERNELS=6.1 $(VPY) -m pytest -q -rs tests/test_real_pykdump.py

test-all:
	@$(MAKE) --no-print-directory test TEST_KERNELS=all

unit: venv
	$(VPY) -m pytest -q tests/unit

# hypothesis with new random examples, 20x as many (`make test` runs a fixed set: the
# "ci" profile in tests/conftest.py)
explore: venv
	CRASH_EXT_HYPOTHESIS=explore $(VPY) -m pytest -q tests/unit/test_words.py

# hostile words and damaged copies of the convoy dump, counted (docs/reliability.md)
fuzz: crash venv
	$(VPY) -m tests.fuzz_hostile

bench: lab
	$(VPY) tests/bench.py

compare: lab
	$(VPY) -m tests.compare_drgn

docs: lab
	$(VPY) docs/make_walkthrough.py

# The README's two commands in a clean Debian 12 root (debootstrap; no host caches).
fresh:
	@tests/fresh.sh

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache

lab-clean:
	rm -rf $(CACHE)/lab $(CACHE)/run
