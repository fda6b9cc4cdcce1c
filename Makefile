# Two entry points: `make demo` and `make test`. Everything else is a helper of those.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# checkov pins packages that clash with ours, so it lives in its own virtualenv (inside .venv: ignored, cleaned).
CHECKOV_VERSION := 3.3.30
CHECKOV_VENV := $(VENV)/checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed-$(CHECKOV_VERSION)

.PHONY: demo test lint typecheck unit install bench clean checkov fuzz chaos

$(STAMP): requirements.txt requirements-dev.txt infra/requirements.txt pyproject.toml package.json package-lock.json
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is required"'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	$(PY) -m pip install --quiet --no-deps -e .
	npm ci --no-audit --no-fund --loglevel=error
	touch $(STAMP)

install: $(STAMP)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check connector function_app.py tests bench infra

typecheck: $(STAMP)
	$(VENV)/bin/mypy connector function_app.py

unit: $(STAMP)
	$(PY) -m pytest -q

$(CHECKOV_STAMP): | $(STAMP)
	test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet checkov==$(CHECKOV_VERSION)
	touch $(CHECKOV_STAMP)

# 0 failed checks and 0 parsing errors over infra/; exceptions are inline `checkov:skip=` with a reason.
checkov: $(CHECKOV_STAMP)
	$(PY) infra/scan.py $(CHECKOV_VENV)/bin/checkov

# The property-based suite with many more examples than `make test` runs (fresh random seed each run).
fuzz: $(STAMP)
	HYPOTHESIS_PROFILE=fuzz $(PY) -m pytest -q -m fuzz

test: lint typecheck checkov unit

demo: $(STAMP)
	$(PY) -m connector.dev.demo

bench: $(STAMP)
	$(PY) bench/run.py

# 1,000 won deals per numbering mode, three `ml-connector serve` workers killed with SIGKILL, faults and
# lost answers in both APIs; one line of figures per mode, non-zero exit on a duplicate, lost deal or leak.
chaos: $(STAMP)
	$(PY) -m connector.dev.chaos --preset full --numbering both

clean:
	rm -rf $(VENV) node_modules .mypy_cache .ruff_cache .pytest_cache
