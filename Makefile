PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed
TORCH  ?= torch==2.13.0

.PHONY: install lint docs test test-fast mutation demo bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH)"
	$(BIN)/python -m pip install --quiet -e '.[serve,onnx,dev]'
	touch $(STAMP)

# pyflakes, pycodestyle, isort, bugbear, pyupgrade (pyproject.toml, [tool.ruff]); then the types of
# nmt/ (mypy, [tool.mypy]: Optional values used unchecked, an Enum where a str is expected, ...)
lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy

# the documentation site from docs/ (a broken link or a missing page fails the build)
docs: install
	$(BIN)/mkdocs build --strict --quiet

# the tiers in order (a failing unit test stops before the slower tiers), the slowest tests of each;
# COVERAGE=1 (CI) adds line coverage of nmt/ over all three: the total and the least-covered modules
COVERAGE ?= 0
PYTEST = $(BIN)/python -m pytest -q --durations=15 $(if $(filter 1,$(COVERAGE)),--cov=nmt --cov-report=)
APPEND = $(if $(filter 1,$(COVERAGE)),--cov-append)
test: install
	$(PYTEST) tests/unit
	$(PYTEST) $(APPEND) tests/integration
	$(PYTEST) $(APPEND) tests/e2e
ifeq ($(COVERAGE),1)
	@echo "== line coverage of nmt/: $$($(BIN)/coverage report --format=total)% (least covered modules first) =="
	@$(BIN)/coverage report --sort=cover --skip-empty | sed -n '3,17p'
endif

# the unit tier only (tests/unit: no training run, no process): times in the README
test-fast: install
	$(BIN)/python -m pytest -q tests/unit

# deliberate breaks of the package, each caught by its test (scripts/mutation_check.py)
mutation: install
	$(BIN)/python scripts/mutation_check.py

DEMO = runs/demo

demo: install
	rm -rf $(DEMO)
	# writes the toy corpus into data/toy on first use, trains, then translates the test split
	$(BIN)/nmt-train experiment=toy run_dir=$(DEMO)
	@echo "== BLEU of the demo model on the toy test split (beam 5; $(DEMO)/test/hyp.txt) =="
	$(BIN)/nmt-evaluate $(DEMO)/test/hyp.txt data/toy/test.tgt

bench: install
	$(BIN)/python scripts/benchmark.py --experiment bench_reference --train-updates 250 --warmup 50

clean:
	rm -rf $(VENV) runs outputs multirun site
