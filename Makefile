PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed
TORCH  ?= torch==2.13.0

.PHONY: install test demo bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH)"
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

test: install
	$(BIN)/python -m pytest -q

DEMO = runs/demo

demo: install
	rm -rf $(DEMO)
	$(BIN)/nmt-data toy --out data/toy
	$(BIN)/nmt-train experiment=toy run_dir=$(DEMO)
	$(BIN)/nmt-translate $(DEMO)/checkpoints/best.pt -i data/toy/test.src -o $(DEMO)/test.hyp --beam 5
	@echo "== BLEU of the demo model on the toy test split (beam 5) =="
	$(BIN)/nmt-evaluate $(DEMO)/test.hyp data/toy/test.tgt

bench: install
	$(BIN)/python scripts/benchmark.py --experiment bench_reference --train-updates 250 --warmup 50

clean:
	rm -rf $(VENV) runs outputs multirun
