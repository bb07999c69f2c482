PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed
TORCH  ?= torch==2.13.0

.PHONY: install lint docs test test-fast demo bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH)"
	$(BIN)/python -m pip install --quiet -e '.[serve,dev]'
	touch $(STAMP)

# pyflakes, pycodestyle, isort, bugbear, pyupgrade (pyproject.toml, [tool.ruff])
lint: install
	$(BIN)/ruff check .

# the documentation site from docs/ (a broken link or a missing page fails the build)
docs: install
	$(BIN)/mkdocs build --strict --quiet

test: install
	$(BIN)/python -m pytest -q

# the unit tier only (tests/unit: no training run, no process): times in the README
test-fast: install
	$(BIN)/python -m pytest -q tests/unit

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
