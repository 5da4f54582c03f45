# The two commands: `make serve` (set up, then run on embedded defaults and the
# sandbox WeChat) and `make test` (set up, then run the whole suite).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: serve test worker setup bench

serve: setup
	$(PY) -m bot serve

worker: setup
	$(PY) -m bot worker

test: setup
	$(PY) -m pytest -q

bench: setup
	$(PY) -m bench.push

setup: $(VENV)/.installed
	@scripts/ensure-cjk-font

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $@
