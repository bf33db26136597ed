# hdi — every target that needs Python depends on `setup`, so a fresh clone needs no manual step.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
RECIPE ?= recipes/ohlcv_1d.yaml
ARGS   ?=
PYTEST ?= -v

.DEFAULT_GOAL := help
.PHONY: help setup test fuzz db-up db-down db-url chromium backfill demo coverage-png bench lint clean

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  make %-10s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

setup: $(STAMP) ## create .venv and install hdi with its pinned dependencies

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev,testing]'
	rm -f $(VENV)/.installed-*
	touch $@

test: setup db-up chromium ## run the whole test suite (provisions the local TimescaleDB and Chromium first)
	HDI_REQUIRE_TIMESCALE=1 HDI_TEST_TIMESCALE_URL="$$(scripts/timescaledb.sh url)" $(BIN)/pytest $(PYTEST)

fuzz: setup ## long property-based run (Hypothesis): make fuzz HDI_HYPOTHESIS_EXAMPLES=5000 (default 2000 per property)
	HDI_HYPOTHESIS_PROFILE=fuzz $(BIN)/pytest tests/property --timeout=0 --hypothesis-show-statistics $(PYTEST)

chromium: ## install Debian's headless Chromium when missing (as root; the coverage-picture test uses it)
	@scripts/chromium.sh >/dev/null

db-up: ## start the local TimescaleDB (installs/builds it on first use), print its store URL (password hidden)
	@scripts/timescaledb.sh up

db-down: ## stop the local TimescaleDB (data is kept in .timescaledb/)
	@scripts/timescaledb.sh down

db-url: ## print the local TimescaleDB store URL, password included (for scripts and HDI_STORE)
	@scripts/timescaledb.sh url

backfill: setup ## run a recipe against Databento: make backfill RECIPE=recipes/ohlcv_1d.yaml ARGS="--store ..."
	$(BIN)/hdi ingest --recipe $(RECIPE) $(ARGS)

demo: setup ## offline demo: the real pipeline against the local synthetic gateway, into the default DuckDB store
	$(BIN)/python -m hdi.testing.demo $(ARGS)

coverage-png: setup chromium ## regenerate docs/coverage.png: the demo, then `hdi status --html` shot in headless Chromium
	$(BIN)/python -m hdi.testing.demo >/dev/null
	$(BIN)/python scripts/coverage_png.py --store duckdb://$(CURDIR)/data/demo/hdi.duckdb --output docs/coverage.png

bench: setup db-up ## run the benchmark scripts (figures and ratios against baselines measured in the same run)
	HDI_BENCH_TIMESCALE_URL="$$(scripts/timescaledb.sh url)" $(BIN)/python benchmarks/run_all.py $(ARGS)

lint: setup ## ruff, then mypy (strict, over hdi/; configured in pyproject.toml)
	$(BIN)/ruff check .
	$(BIN)/mypy

clean: ## remove caches (keeps .venv, data/ and the database)
	rm -rf .pytest_cache .ruff_cache .mypy_cache build *.egg-info
