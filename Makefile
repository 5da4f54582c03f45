# The two commands: `make serve` (set up, then run the demo: DEMO=1, on embedded
# defaults and the sandbox WeChat, listening on 127.0.0.1) and `make test` (set
# up, then check the import layers and run the whole suite). Running needs
# requirements.txt and the console's front-end libraries (package-lock.json,
# through npm); the tests also need requirements-dev.txt and a Chromium for the
# console's browser tests. Each set installs once, and again when its file changes.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
RUNTIME_INSTALLED := $(VENV)/.installed-runtime
DEV_INSTALLED := $(VENV)/.installed-dev
ASSETS_INSTALLED := node_modules/.installed

.PHONY: serve worker bench test font browser

serve: $(RUNTIME_INSTALLED) $(ASSETS_INSTALLED) font
	DEMO=1 $(PY) -m bot serve

worker: $(RUNTIME_INSTALLED) font
	$(PY) -m bot worker

bench: $(RUNTIME_INSTALLED) font
	$(PY) -m bench.push

test: $(DEV_INSTALLED) $(ASSETS_INSTALLED) font browser
	$(VENV)/bin/lint-imports --no-cache
	$(PY) -m pytest -q

font:
	@scripts/ensure-cjk-font

browser:
	@scripts/ensure-chromium

# ECharts for the console's charts, served by the server itself: nothing loads from a CDN.
$(ASSETS_INSTALLED): package-lock.json
	npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	touch $@

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(RUNTIME_INSTALLED): requirements.txt | $(PY)
	$(PY) -m pip install -q -r requirements.txt
	touch $@

# requirements-dev.txt includes requirements.txt, so a change to either installs this set again.
$(DEV_INSTALLED): requirements-dev.txt requirements.txt | $(PY)
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $@
