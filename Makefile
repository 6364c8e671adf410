# factorcore developer tasks. `make help` lists them.
# Development runs in a project-local virtualenv (.venv) that `make` creates and fills; the
# test suite runs against the release wheel installed in a second, clean one (.venv-wheel).

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
WHEEL_VENV := .venv-wheel
WPY    := $(WHEEL_VENV)/bin/python
# glibc baseline of the Linux wheel (what `auditwheel show` must accept). zig links against
# that glibc whatever this machine has; maturin finds it through the virtualenv's python.
MANYLINUX ?= manylinux_2_28
MATURIN := env PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(CURDIR)/$(VENV)/bin/maturin
ifeq ($(shell uname -s),Linux)
WHEEL_FLAGS := --zig --compatibility $(MANYLINUX)
AUDIT := $(VENV)/bin/auditwheel show
else
WHEEL_FLAGS :=
AUDIT := true
endif
# PATH without the directories that hold cargo or rustc: the wheel must work without Rust.
# The interpreter is resolved first, in case it shares a directory with cargo (/usr/bin).
PYTHON_BIN := $(shell command -v $(PYTHON))
NO_RUST := env PATH="$(shell echo "$$PATH" | tr ':' '\n' | while read -r d; do \
	[ -x "$$d/cargo" ] || [ -x "$$d/rustc" ] || echo "$$d"; done | paste -sd: -)"
SOURCES := Cargo.toml Cargo.lock pyproject.toml LICENSE \
	$(shell find src python -type f -not -name '*.so' -not -path '*/__pycache__/*')

.DEFAULT_GOAL := help
.PHONY: help demo readme-charts test test-rust test-python wheel sdist-check develop lint lint-workflows \
	format bench bench-ci bench-deps bench-quick clean fuzz

help:  ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "maturin>=1.16,<2" "numpy>=2.0" "polars>=2.0,<3" \
		"pytest>=8" "hypothesis>=6.170" "statsmodels>=0.15" "pandas>=2.2" "skfolio>=1.12" \
		"ruff>=0.14" "matplotlib>=3.10" "check-jsonschema>=0.39" "auditwheel>=6.4" \
		"ziglang>=0.13"
	touch $(STAMP)

develop: $(STAMP)  ## Build the Rust core (release) into the virtualenv
	$(VENV)/bin/maturin develop --release --quiet

demo: develop  ## Main job: all analytics on the built-in sample market (report; tables, charts in demo-output/)
	$(VENV)/bin/factorcore demo --out demo-output

readme-charts: demo  ## Refresh the README's charts (docs/img) from the demo
	mkdir -p docs/img
	cp demo-output/*.png docs/img/

test-rust:  ## Kernel tests (cargo test, no Python needed)
	cargo test --lib --quiet

dist/.built: $(STAMP) $(SOURCES)
	rm -rf dist
	$(MATURIN) build --release --quiet --out dist $(WHEEL_FLAGS)
	$(AUDIT) dist/factorcore-*.whl
	@ls -l dist/factorcore-*.whl | awk '{printf "wheel size: %.1f MiB\n", $$5 / 1048576}'
	touch $@

wheel: dist/.built  ## Release wheel (abi3, manylinux, LTO) in dist/

$(WHEEL_VENV)/.installed: dist/.built
	rm -rf $(WHEEL_VENV)
	$(NO_RUST) $(PYTHON_BIN) -m venv $(WHEEL_VENV)
	$(NO_RUST) $(WPY) -m pip install --quiet --upgrade pip
	$(NO_RUST) $(WPY) -m pip install --quiet "$$(ls dist/factorcore-*.whl)[test,plot,bench]" "mypy>=1.18"
	touch $@

test-python: $(WHEEL_VENV)/.installed  ## Python tests against the installed wheel, without Rust on PATH
	$(NO_RUST) FACTORCORE_TEST_INSTALLED=1 $(WPY) -m pytest tests -q

test: test-rust test-python  ## The whole test suite: cargo tests, then pytest against the release wheel

# Fuzzing: a failure prints FUZZ_REPLAY=<target>:<hex>; rerun it with that variable set, and
# turn every finding into a plain regression test. Seconds of random inputs per kernel target (fuzz/src/lib.rs has the properties). The
# fuzz crate shares target/ with `make test-rust`, so after it only two crates build.
FUZZ_SECONDS ?= 15
fuzz:  ## Every kernel fuzz target on random inputs for FUZZ_SECONDS each; a failure prints its FUZZ_REPLAY
	cd fuzz && CARGO_TARGET_DIR=$(CURDIR)/target FUZZ_SECONDS=$(FUZZ_SECONDS) \
		cargo test --locked --quiet --test fuzz -- --nocapture

sdist-check: $(STAMP)  ## The sdist builds into a working wheel from a fresh directory
	rm -rf dist-sdist
	$(MATURIN) sdist --out dist-sdist
	set -e; tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	tar -xzf dist-sdist/factorcore-*.tar.gz -C $$tmp; \
	cd $$tmp/factorcore-*/; \
	CARGO_TARGET_DIR=$(CURDIR)/target $(MATURIN) build --release --quiet \
		--out $$tmp/wheel $(WHEEL_FLAGS); \
	$(NO_RUST) $(PYTHON_BIN) -m venv $$tmp/env; \
	$(NO_RUST) $$tmp/env/bin/python -m pip install --quiet $$tmp/wheel/factorcore-*.whl; \
	cd $$tmp; $(NO_RUST) $$tmp/env/bin/factorcore demo --no-charts --out $$tmp/demo > $$tmp/demo.log; \
	grep -q "== Diversification: how many bets ==" $$tmp/demo.log; \
	echo "sdist -> wheel -> demo in a clean environment: ok"

lint-workflows: $(STAMP)  ## The GitHub workflows against their JSON schema
	$(VENV)/bin/check-jsonschema --builtin-schema vendor.github-workflows .github/workflows/*.yml

lint: lint-workflows $(WHEEL_VENV)/.installed  ## ruff, rustfmt, clippy (warnings are errors), stubs vs the built core, workflows
	$(VENV)/bin/ruff check python tests benches
	$(VENV)/bin/ruff format --check python tests benches
	cargo fmt --check
	cargo clippy --all-targets --features python -- -D warnings
	$(NO_RUST) $(WPY) -m mypy.stubtest factorcore._core

format: $(STAMP)  ## Format Rust and Python sources
	cargo fmt
	$(VENV)/bin/ruff format python tests benches
	$(VENV)/bin/ruff check --fix python tests benches

bench-deps: $(STAMP)
	$(PY) -m pip install --quiet "polars-ols>=0.3.5" "pytest-benchmark>=5.1" psutil

BENCH_PYTEST := -m pytest benches -q -p no:cacheprovider --benchmark-only \
	--benchmark-max-time=0.5 --benchmark-min-rounds=3 --benchmark-columns=min,median,rounds

bench: develop bench-deps  ## Full report (capability targets, comparisons, scaling; ~15 min, quiet machine)
	mkdir -p bench-results
	$(PY) benches/scaling.py --out bench-results  # first: later runs leave memory fragmented
	$(PY) benches/bench_exposures.py --out bench-results/exposures.md
	$(PY) benches/bench_attribution.py --out bench-results/attribution.md
	$(PY) benches/bench_diversification.py --out bench-results/diversification.md
	FACTORCORE_BENCH=full $(PY) $(BENCH_PYTEST) --benchmark-json=bench-results/full.json
	$(PY) benches/ratios.py bench-results/full.json --no-baseline --out bench-results/comparisons.md
	$(PY) benches/readme.py bench-results README.md

bench-ci: $(WHEEL_VENV)/.installed  ## Quick comparison with the peers (installed wheel); fails when factorcore loses its lead
	mkdir -p bench-results
	$(NO_RUST) $(WPY) $(BENCH_PYTEST) --benchmark-json=bench-results/quick.json
	$(WPY) benches/ratios.py bench-results/quick.json --check --out bench-results/quick.md

bench-quick: develop bench-deps  ## Quick runs of the capability-target scripts (smaller sizes)
	$(PY) benches/bench_exposures.py --quick
	$(PY) benches/bench_attribution.py --quick
	$(PY) benches/bench_diversification.py --quick

clean:  ## Remove build products and the virtualenv
	cargo clean
	rm -rf $(VENV) $(WHEEL_VENV) dist dist-sdist bench-results demo-output .pytest_cache .hypothesis
