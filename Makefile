# Teams Number Sync — the two commands a newcomer needs:
#   make demo   an operator with three customers on Azurite + the Graph simulator: the demo tenant's
#               sync and timeline with per-user reports, a customer whose consent lacks a Teams
#               permission, one just added and checked, and the per-tenant summary
#   make test   every check: ruff, mypy, import layers, unit + contract + integration + fault tests
# Both install what they need (a venv from the pinned requirements, Azurite from package-lock.json,
# Debian's chromium for the helpdesk report's browser test).
#   make test-fast  ruff and the tests without Azurite or the simulator (the pure core and fakes)
#   make infra-check  the offline checks of infra/ alone (tree-sitter, structure, checkov)

PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
PY_STAMP   := $(VENV)/.installed
NODE_STAMP := node_modules/.installed
# checkov (the Bicep checks of tests/infra) lives in its own venv: it pins packages (packaging,
# pycep-parser) the app's venv must not get.
CHECKOV_VENV  := .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed
CHROMIUM       := /usr/bin/chromium
CHROMIUM_STAMP := $(VENV)/.chromium

.PHONY: demo demo-reset test test-fast lint typecheck layers pytest faults install chromium clean \
	checkov-venv infra-check

install: $(PY_STAMP) $(NODE_STAMP) $(CHROMIUM_STAMP)

$(PY_STAMP): requirements.txt requirements-dev.txt
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) (set PYTHON=...)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check \
		-r requirements.txt -r requirements-dev.txt
	touch $@

checkov-venv: $(CHECKOV_STAMP)

$(CHECKOV_STAMP): requirements-checkov.txt
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) (set PYTHON=...)"; exit 1; }
	test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --disable-pip-version-check \
		-r requirements-checkov.txt
	touch $@

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# The helpdesk report's browser test (tests/integration/test_helpdesk_report.py) drives Debian's
# chromium through Playwright, which never downloads browsers of its own. Installed once with
# apt-get when missing (the machine runs as root; otherwise it says what to run); the stamp is
# made again whenever chromium has gone missing since.
chromium: $(CHROMIUM_STAMP)

$(CHROMIUM_STAMP): $(if $(wildcard $(CHROMIUM)),,FORCE) | $(PY_STAMP)
	@if [ ! -x $(CHROMIUM) ]; then \
		if [ "$$(id -u)" != 0 ]; then \
			echo "need $(CHROMIUM): run sudo apt-get install -y chromium"; exit 1; fi; \
		echo "installing chromium (apt-get) for the browser test"; \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get update -qq >/dev/null && \
		apt-get install -y -qq chromium >/dev/null || exit 1; \
	fi
	@touch $@

FORCE:

# The demo keeps its Azurite and Teams state in .demo/, so a second run shows nothing to change.
demo: install
	$(BIN)/python -m local_runner scenarios/demo.json --customer scenarios/fabrikam.json \
		--just-added scenarios/tailspin.json --numbers scenarios/tailspin-numbers.csv \
		--state-dir .demo

demo-reset:
	rm -rf .demo

test: install checkov-venv lint typecheck layers pytest

# The pure core and the fakes only — no Azurite, no simulator (the tests under tests/integration,
# tests/contract, tests/simulator and tests/faults are marked integration by tests/conftest.py).
test-fast: $(PY_STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -m "not integration" -q

lint:
	$(BIN)/ruff check .

typecheck:
	$(BIN)/mypy

layers:
	$(BIN)/lint-imports

# pytest exits 5 when it collected nothing: that is a broken suite, not a pass.
# Two workers (pytest-xdist), a test file each at a time: every file's tests share their worker's
# Azurite and simulator, and most of a test's time is spent waiting on them.
PYTEST_WORKERS ?= 2
pytest:
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadfile; status=$$?; \
	if [ $$status -eq 5 ]; then echo "pytest collected no tests"; exit 1; fi; exit $$status

# The offline checks of the Bicep templates alone (also part of `make test`).
infra-check: $(PY_STAMP) checkov-venv
	$(BIN)/python -m pytest tests/infra -q

# The fault drills alone (tests/faults, also part of `make test`): the app under injected Graph,
# worker and storage faults. `python -m benchmarks.faults` is the big version.
faults: install
	$(BIN)/python -m pytest -m faults

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) node_modules .demo .mypy_cache .pytest_cache .ruff_cache .hypothesis
