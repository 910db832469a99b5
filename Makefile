# csfsim: two commands on a fresh machine — `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The engine's modules compiled with mypyc (setup.py, sim/engine_build.py): recompiled when the build is not
# current (sim/engine_build.py says; any sim/*.py change makes make ask it).
ENGINE_SOURCES := setup.py $(wildcard sim/*.py)
ENGINE_STAMP := $(VENV)/.engine-compiled
REPS ?= 20
SEED ?= 20261124

.PHONY: setup demo test lint bench docs validate clean

setup: $(ENGINE_STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

## After an edit of an engine module: compile it again (about 40 s; until then csfsim runs it as Python and says so).
## The install above has compiled it already unless this machine cannot (then it is tried once more, in vain).
$(ENGINE_STAMP): $(STAMP) $(ENGINE_SOURCES)
	$(BIN)/python sim/engine_build.py || ($(BIN)/python -m pip install --quiet --no-deps -e . \
		&& $(BIN)/python sim/engine_build.py) || true
	touch $(ENGINE_STAMP)

## The main job: experienced vs low-volume center on the shipped default scenarios.
demo: setup
	$(BIN)/csfsim compare scenarios/experienced_center.toml scenarios/low_volume_center.toml \
		--reps $(REPS) --seed $(SEED) --out results/demo --overwrite

## The whole test suite (what CI runs), with coverage of sim/.
test: setup
	$(BIN)/ruff check sim tests benchmarks tools setup.py
	$(BIN)/python -m pytest --cov=sim --cov-report=term:skip-covered --cov-fail-under=90

lint: setup
	$(BIN)/ruff check sim tests benchmarks tools setup.py

bench: setup
	$(BIN)/python benchmarks/run_benchmarks.py

docs: setup
	$(BIN)/python tools/make_parameter_table.py

validate: setup
	$(BIN)/python tools/validate_model.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis .coverage build sim/*.so sim/_compiled*.json *__mypyc*.so
