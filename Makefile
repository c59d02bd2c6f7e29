# One-command set-up on a fresh machine (Python 3.11, pip, gcc): every target creates .venv if needed.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CONFIG ?= config/config.yaml
# Slots for the rules that ask gpu=1: one per CUDA device; on a CPU-only machine one per core, so that
# the single-threaded training jobs (config training.threads: 1) keep every core busy instead of
# queueing behind one another for a GPU that is not there. Expanded when `run` starts (after set-up).
GPU_SLOTS ?= $(shell $(BIN)/python -c "import os, torch; print(torch.cuda.device_count() or os.cpu_count())" 2>/dev/null || echo 1)

.PHONY: run test bench report dag clean-results ship-count-model

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)  ## the whole DAG on the default config (embedded phantom cohort)
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/snakemake --configfile $(CONFIG) --cores all --resources gpu=$(GPU_SLOTS)

test: $(STAMP)  ## unit tests, stage tests, the end-to-end DAG on config/test.yaml, and the SLURM run
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/python -m pytest -q tests

bench: $(STAMP)  ## benchmarks (results/<name>/bench/)
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/spectbone bench all --config config/test.yaml --out-dir results/bench/bench

report: $(STAMP)  ## HTML report of the last run of $(CONFIG)
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/snakemake --configfile $(CONFIG) --report results/$$(grep '^name:' $(CONFIG) | awk '{print $$2}')/report.html

dag: $(STAMP)  ## rule graph as Mermaid (results/rulegraph.mmd), and as SVG where graphviz's dot is installed
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/snakemake --configfile $(CONFIG) --rulegraph mermaid-js > results/rulegraph.mmd
	if command -v dot >/dev/null; then PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/snakemake --configfile $(CONFIG) --rulegraph dot | dot -Tsvg > results/rulegraph.svg; fi

clean-results:  ## delete the results folder of $(CONFIG) (keeps the other runs and results/README.md)
	rm -rf results/$$(grep '^name:' $(CONFIG) | awk '{print $$2}')

ship-count-model: $(STAMP)  ## copy the default run's count-domain EMANet into the package (what `spectbone denoise` uses by default)
	$(BIN)/python scripts/ship_count_model.py results/default/models/emanet_counts.pt src/spectbone/models/data
