# StarTrack developer entry points. `make demo` and `make test` are the two README commands.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml constraints.txt | sha1sum | cut -c1-12)

.PHONY: setup demo test lint format bench miles real-stars stelib clean help

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade -c constraints.txt pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev,serve]'
	rm -f $(VENV)/.installed-* && touch $@

setup: $(STAMP) ## create .venv with the pinned dependencies

demo: setup ## simulate the demo survey, ingest, train, score, then serve the dashboard
	$(BIN)/startrack demo

test: setup ## lint, then the whole test suite (browser tests need chromium + chromium-driver)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest

lint: setup ## ruff lint + format check
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

format: setup ## ruff format + autofix
	$(BIN)/ruff format . && $(BIN)/ruff check --fix .

bench: setup ## the ETL benchmark (the others take a warehouse or run long: see README)
	cd benchmarks && ../$(BIN)/python bench_etl.py

#: The MILES library of 985 real stars (with its parameter file) ships inside the SDSS MaNGA
#: DAP's wheel on PyPI; it is read inside the wheel, never unpacked into the repository.
MILES_WHEEL := data/external/sdss_mangadap-4.5.0-py3-none-any.whl

$(MILES_WHEEL):
	mkdir -p data/external
	$(BIN)/python -m pip download --quiet --no-deps -d data/external sdss-mangadap==4.5.0

miles: setup $(MILES_WHEEL) ## fetch the MILES real-star library (121 MB wheel from PyPI) into data/external

real-stars: miles ## type the MILES real stars with the current warehouse's model (benchmarks/real_library.py)
	$(BIN)/python benchmarks/real_library.py --miles $(MILES_WHEEL) --warehouse data/warehouse --workdir data/real-library

stelib: miles ## rebuild the shipped real-star library (STELIB, MILES stars left out) from that wheel
	$(BIN)/python -m startrack.simulator.library_stars --from-wheel $(MILES_WHEEL)

clean: ## remove the venv, the demo survey and the default warehouse (./data/warehouse)
	rm -rf $(VENV) demo-survey data/warehouse
