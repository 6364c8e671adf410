# factorcore developer tasks. `make help` lists them.
# Everything runs in a project-local virtualenv (.venv) that `make` creates and fills.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help demo readme-charts test test-rust test-python develop lint format bench bench-ci bench-deps bench-quick clean

help:  ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "maturin>=1.16,<2" "numpy>=2.0" "polars>=2.0,<3" \
		"pytest>=8" "hypothesis>=6.170" "statsmodels>=0.15" "pandas>=2.2" "skfolio>=1.12" \
		"ruff>=0.14" "matplotlib>=3.10" "check-jsonschema>=0.39"
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

test-python: develop  ## Python tests (API, reference agreement, bad input, threads)
	$(PY) -m pytest tests -q

test: test-rust test-python  ## The whole test suite: cargo tests, then pytest

lint: $(STAMP)  ## ruff, rustfmt, clippy (warnings are errors) and the GitHub workflows' schema
	$(VENV)/bin/check-jsonschema --builtin-schema vendor.github-workflows .github/workflows/*.yml
	$(VENV)/bin/ruff check python tests benches
	$(VENV)/bin/ruff format --check python tests benches
	cargo fmt --check
	cargo clippy --all-targets --features python -- -D warnings

format: $(STAMP)  ## Format Rust and Python sources
	cargo fmt
	$(VENV)/bin/ruff format python tests benches
	$(VENV)/bin/ruff check --fix python tests benches

bench-deps: $(STAMP)
	$(PY) -m pip install --quiet "polars-ols>=0.3.5" "pytest-benchmark>=5.1" psutil

BENCH_PYTEST := $(PY) -m pytest benches -q -p no:cacheprovider --benchmark-only \
	--benchmark-max-time=0.5 --benchmark-min-rounds=3 --benchmark-columns=min,median,rounds

bench: develop bench-deps  ## Full report (capability targets, comparisons, scaling; ~15 min, quiet machine)
	mkdir -p bench-results
	$(PY) benches/bench_exposures.py --out bench-results/exposures.md
	$(PY) benches/bench_attribution.py --out bench-results/attribution.md
	$(PY) benches/bench_diversification.py --out bench-results/diversification.md
	FACTORCORE_BENCH=full $(BENCH_PYTEST) --benchmark-json=bench-results/full.json
	$(PY) benches/ratios.py bench-results/full.json --baseline benches/baseline-full.json \
		--out bench-results/comparisons.md
	$(PY) benches/scaling.py --out bench-results
	$(PY) benches/readme.py bench-results README.md

bench-ci: develop bench-deps  ## Quick comparison with the peers; fails when factorcore loses its lead (CI)
	mkdir -p bench-results
	$(BENCH_PYTEST) --benchmark-json=bench-results/quick.json
	$(PY) benches/ratios.py bench-results/quick.json --check --out bench-results/quick.md

bench-quick: develop bench-deps  ## Quick runs of the capability-target scripts (smaller sizes)
	$(PY) benches/bench_exposures.py --quick
	$(PY) benches/bench_attribution.py --quick
	$(PY) benches/bench_diversification.py --quick

clean:  ## Remove build products and the virtualenv
	cargo clean
	rm -rf $(VENV) dist bench-results demo-output .pytest_cache .hypothesis
