# watchkeeper: `make run` starts the embedded stack, `make test` runs the whole suite.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check -q

.PHONY: run test check-fast lint bench services clean console

$(VENV)/.stamp-run: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -e .
	touch $@

$(VENV)/.stamp-dev: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -e '.[dev]'
	# the pyats extra (tests of collect/genie) pins pysnmp==7.1.22, whose SNMPv3 fails the
	# snmp tests: install it, then put back the pysnmp [dev] chose (docs/decisions.md D29)
	SNMP=$$($(PY) -c 'import importlib.metadata as m; print(m.version("pysnmp"))') && \
	  $(PIP) install -e '.[pyats]' && $(PIP) install --no-deps "pysnmp==$$SNMP"
	touch $@ $(VENV)/.stamp-run

# The web console's uPlot comes from npm at the lockfile's version (docs/decisions.md D34):
# copied into the package's static folder, so `make run`, `make test` and a wheel built after
# it carry it; nothing is fetched at run time.
CONSOLE_VENDOR := src/watchkeeper/api/console/static/vendor
$(CONSOLE_VENDOR)/.stamp: package-lock.json
	npm ci --no-audit --no-fund --ignore-scripts
	mkdir -p $(CONSOLE_VENDOR)
	cp node_modules/uplot/dist/uPlot.iife.min.js node_modules/uplot/dist/uPlot.min.css $(CONSOLE_VENDOR)/
	cp node_modules/uplot/LICENSE $(CONSOLE_VENDOR)/uPlot.LICENSE.txt
	touch $@

## console: the web console's JavaScript dependency (uPlot, from npm by the lockfile)
console: $(CONSOLE_VENDOR)/.stamp

## run: the all-in-one stack on the embedded default (API on 127.0.0.1:8080, data in ./var);
##      another port: make run ARGS="--listen 127.0.0.1:9090" (see README)
run: $(VENV)/.stamp-run $(CONSOLE_VENDOR)/.stamp
	$(VENV)/bin/watchkeeper up $(ARGS)

## services: install and start the real servers the tests talk to
services:
	scripts/services up

## lint: ruff, mypy --strict, the import layers, and no path outside the repository
lint: $(VENV)/.stamp-dev
	$(VENV)/bin/ruff check src tests benchmarks scripts
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports
	$(PY) scripts/check_paths.py

## test: everything, against real services, with the coverage gate
test: $(VENV)/.stamp-dev $(CONSOLE_VENDOR)/.stamp services lint
	$(PY) -m pytest --cov --cov-report=term --cov-fail-under=90 $(PYTEST_ARGS)

## check-fast: the suite without external services or slow end-to-end runs
check-fast: $(VENV)/.stamp-dev
	$(PY) -m pytest -m "not external_service and not slow" -q $(PYTEST_ARGS)

## bench: the benchmarks (peers started by the benchmarks themselves)
bench: $(VENV)/.stamp-dev
	scripts/services bench-peers
	$(PY) benchmarks/run_all.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .coverage htmlcov
