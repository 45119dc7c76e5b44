# One set-up path: `make setup` builds .venv (torch, Lava, lava-dl, spikecodec) and verifies it.
# `make quickstart` and `make test` run it first when needed; re-running is quick and changes
# nothing. Use another interpreter with e.g. `make setup PYTHON=~/.pyenv/versions/3.10.13/bin/python`.
PYTHON ?= python3
VENV ?= .venv
STAMP := $(VENV)/.spikecodec-setup
PY := $(VENV)/bin/python

.PHONY: setup quickstart test test-all bench lint clean-venv docs

setup: $(STAMP)

$(STAMP): requirements.txt requirements-lava.txt pyproject.toml tools/setup_env.py tools/verify_lava.py
	$(PYTHON) tools/setup_env.py --venv $(VENV) --python $(PYTHON)
	touch $(STAMP)

quickstart: setup
	$(VENV)/bin/spikecodec quickstart

test: setup
	$(PY) -m pytest -q

test-all: setup
	$(PY) -m pytest -q -m "" 

# API reference from the docstrings (pdoc) into build/docs/ (open build/docs/index.html)
DOC_MODULES := spikecodec spikecodec.api spikecodec.errors spikecodec.deploy spikecodec.train \
	spikecodec.workflows spikecodec.lava_procs
docs: setup
	$(PY) -m pdoc -o build/docs $(DOC_MODULES)

clean-venv:
	rm -rf $(VENV)
