# squeezex — two commands: `make demo` and `make test` (each sets itself up).
#
# The heavy dependencies (torch ≈ 5 GB) live in a virtual environment cached outside the
# clone, keyed by the dependency list (.ci/deps.py); `.venv` is a link to it, and the
# package itself is installed in editable mode from whichever clone ran `make` last.

PYTHON   ?= python3
CACHE    ?= $(HOME)/.cache/squeezex
HASH     := $(shell $(PYTHON) .ci/deps.py --hash)
BASE     := $(CACHE)/venv-$(HASH)
VENV     := .venv
PY       := $(VENV)/bin/python
OUT      ?= data/runs/demo
BENCH_OUT ?= data/runs/bench
PYTEST_ARGS ?=
# test processes: the cores this machine lets us use (pytest-xdist)
JOBS     ?= $(shell $(PYTHON) -c "import os; print(len(os.sched_getaffinity(0)))" 2>/dev/null || echo 2)
# the notebooks' short configuration (never skips a cell), one torch thread per test process
# (the tests' tensors are small: a second thread mostly spins)
TEST_ENV := SQUEEZEX_SMOKE=1 OMP_NUM_THREADS=1
PYTEST   := $(TEST_ENV) $(PY) -m pytest -n $(JOBS) --dist loadscope
# the notebooks as nbval executed them, with their outputs (notebooks/conftest.py), for the docs
EXECUTED := build/notebooks
SPHINX   := $(VENV)/bin/sphinx-build -W --keep-going -q -j $(JOBS) -b html docs build/docs

.PHONY: setup demo bench bench-archs test test-fast test-notebooks docs lint format lab bench-cost clean

setup: $(BASE)/.complete
	@if [ "$$(readlink $(VENV))" != "$(BASE)" ]; then rm -rf $(VENV); ln -s $(BASE) $(VENV); fi
	@(cd / && $(CURDIR)/$(PY) -c "import pathlib, squeezex; assert pathlib.Path(squeezex.__file__).parent == pathlib.Path('$(CURDIR)/squeezex').resolve()") 2>/dev/null \
	  || $(PY) -m pip install --quiet --no-deps --no-build-isolation -e .

$(BASE)/.complete:
	@echo "Creating the environment $(BASE) (once per dependency list)"
	rm -rf $(BASE)
	$(PYTHON) -m venv $(BASE)
	$(BASE)/bin/python -m pip install --quiet --upgrade pip setuptools wheel
	$(PYTHON) .ci/deps.py --list > $(BASE)/requirements.txt
	$(BASE)/bin/python -m pip install -r $(BASE)/requirements.txt
	touch $@

# the quick look (squeezex.bench.presets: scenes-6c, one seed, the headline methods and families)
demo: setup
	$(PY) -m squeezex bench --preset demo --out $(OUT)
	$(PY) -m squeezex figures --results $(OUT) --out $(OUT)/figures

# the full benchmark of the README's tables (default datasets, three seeds, every family)
bench: setup
	$(PY) -m squeezex bench --preset full --out $(BENCH_OUT)
	$(PY) -m squeezex figures --results $(BENCH_OUT) --out $(BENCH_OUT)/figures

# the study across architectures (small, resnet, convnext, vit; with and without SE and
# squeezed; three seeds, each explained): benchmarks/archs.json and the README's table
bench-archs: setup
	$(PY) benchmarks/archs.py

# everything CI runs: pytest (browser and Slurm tests included when they can run) and every
# notebook executed by nbval in its short configuration, saved with its outputs; then the
# docs built from those (warnings are errors) and opened in a browser (tests/test_docs_site.py)
test: setup
	SQUEEZEX_EXECUTED_NOTEBOOKS=$(EXECUTED) $(PYTEST) tests notebooks --nbval-lax -m "not docs" --durations=25 $(PYTEST_ARGS)
	rm -rf docs/api/generated  # stubs of a module since removed would be orphans (a warning)
	SQUEEZEX_EXECUTED_NOTEBOOKS=$(EXECUTED) $(SPHINX)
	$(PYTEST) tests/test_docs_site.py -m docs

# the documentation in build/docs: the notebooks executed once by nbval (short
# configuration), then Sphinx (MyST-NB, autodoc) with warnings as errors
docs: setup
	SQUEEZEX_EXECUTED_NOTEBOOKS=$(EXECUTED) $(PYTEST) notebooks --nbval-lax -q $(PYTEST_ARGS)
	rm -rf docs/api/generated
	SQUEEZEX_EXECUTED_NOTEBOOKS=$(EXECUTED) $(SPHINX)
	@echo "open build/docs/index.html"

# the edit loop: the library and harness unit tests (no notebook, browser, Slurm or other
# test that takes seconds: tests/conftest.py marks those `slow`)
test-fast: setup
	$(PYTEST) tests -m "not slow and not docs" $(PYTEST_ARGS)

# the notebooks at full size (no smoke switch), as a reader runs them
test-notebooks: setup
	$(PY) -m pytest notebooks --nbval-lax --durations=25 $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/ruff check squeezex tests benchmarks
	$(VENV)/bin/ruff format --check squeezex tests benchmarks

format: setup
	$(VENV)/bin/ruff format squeezex tests benchmarks
	$(VENV)/bin/ruff check --fix squeezex tests benchmarks

lab: setup
	$(VENV)/bin/jupyter lab notebooks

bench-cost: setup
	$(PY) benchmarks/speed.py
	$(PY) benchmarks/se_cost.py
	$(PY) benchmarks/vebi_cost.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache docs/notebooks docs/api/generated
