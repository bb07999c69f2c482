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

demo: install
	$(BIN)/python scripts/make_toy_data.py --out data/toy
	$(BIN)/nmt-train experiment=toy run_dir=runs/demo
	$(BIN)/nmt-translate runs/demo/checkpoints/best.pt -i data/toy/test.src -o runs/demo/test.hyp --beam 5
	$(BIN)/nmt-evaluate runs/demo/test.hyp data/toy/test.tgt

bench: install
	$(BIN)/python scripts/benchmark.py --experiment bench_reference

clean:
	rm -rf $(VENV) runs outputs multirun
