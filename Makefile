# csfsim: two commands on a fresh machine — `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
REPS ?= 20
SEED ?= 20261124

.PHONY: setup demo app test lint bench docs validate clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,app]'
	touch $(STAMP)

## The main job: experienced vs low-volume center on the shipped default scenarios.
demo: setup
	$(BIN)/csfsim compare scenarios/experienced_center.toml scenarios/low_volume_center.toml \
		--reps $(REPS) --seed $(SEED) --explain --out results/demo --overwrite

## The planners' web app on http://127.0.0.1:8501 (this machine only); PORT=... to change the port.
PORT ?= 8501
app: setup
	$(BIN)/csfsim app --port $(PORT)

## The whole test suite (what CI runs), with coverage of sim/.
test: setup
	$(BIN)/ruff check sim tests benchmarks tools
	$(BIN)/python -m pytest --cov=sim --cov-report=term:skip-covered --cov-fail-under=90

lint: setup
	$(BIN)/ruff check sim tests benchmarks tools

bench: setup
	$(BIN)/python benchmarks/run_benchmarks.py

## The generated pages (parameters, metrics), then the documentation site into site/ (open site/index.html).
docs: setup
	$(BIN)/python tools/make_parameter_table.py
	$(BIN)/python tools/make_metrics_table.py
	$(BIN)/python -m pip install --quiet -e '.[docs]'
	$(BIN)/mkdocs build --strict

validate: setup
	$(BIN)/python tools/validate_model.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis .coverage build site
