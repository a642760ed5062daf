# The README's two commands: `make demo` and `make test`. Both set up .venv on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
# pytest workers (docs/design.md section 10: 2 cores here)
JOBS   ?= auto

.PHONY: setup test test-slow test-slice demo bench wheel-check clean

setup: $(STAMP)

# torch first, pinned to the CPU wheel on disk; unpinned it can pull a multi-GB CUDA build.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[all,test,bench]'
	rm -f $(VENV)/.installed-*
	touch $@

test: setup
	$(BIN)/python -m pytest -n $(JOBS) -q

# the long sweeps (random-network regressions in both simulators, bigger nets)
test-slow: setup
	$(BIN)/python -m pytest -n $(JOBS) -q -m slow

# A random slice of the slow tests, on every CI run (.ci/run): SLICE_COUNT tests spread over
# the slow test functions, each time-boxed to SLICE_TIMEOUT s and the slice (per worker) to
# SLICE_BUDGET s (pytest-timeout; a test over its box fails, an exhausted budget stops and
# fails the run). The seed is printed first; replay with `make test-slice SLICE_SEED=S`.
SLICE_COUNT   ?= 6
SLICE_TIMEOUT ?= 420
SLICE_BUDGET  ?= 540
ifndef SLICE_SEED
SLICE_SEED := $(shell date +%s)
endif

test-slice: setup
	@echo "slow slice: $(SLICE_COUNT) tests, seed $(SLICE_SEED), at most $(SLICE_TIMEOUT) s each, $(SLICE_BUDGET) s in all (replay: make test-slice SLICE_SEED=$(SLICE_SEED))"
	$(BIN)/python -m pytest -n $(JOBS) -v -m slow_slice --slow-slice $(SLICE_COUNT) \
		--slow-seed $(SLICE_SEED) --timeout $(SLICE_TIMEOUT) --session-timeout $(SLICE_BUDGET)

demo: setup
	$(BIN)/delayhw demo -o demo_out --force

# The wheel as a user gets it: built from a clean copy, checked for every module and data file,
# installed into a fresh venv (torch==2.13.0 first) and `delayhw demo` run from outside the
# checkout (.ci/wheel-check; a few minutes).
wheel-check:
	PYTHON=$(PYTHON) .ci/wheel-check

bench: setup
	for b in bench/*.py; do case $$b in */_*) ;; *) $(BIN)/python $$b || exit 1;; esac; done

clean:
	rm -rf demo_out build sim_build .pytest_cache .hypothesis
