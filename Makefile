# lendsms — developer entry points. `make run` and `make test` are all a new
# machine needs (Python >= 3.11 with venv).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8080

.PHONY: install run test lint typecheck unit bench bench-throughput clean lock audit-deps

# every dependency is pinned in constraints.txt (make lock rewrites it)
$(BIN)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[test]'
	touch $@

# a tiny provider plugin the tests install to prove the entry point works
$(BIN)/.test-plugin: $(BIN)/.installed tests/fixtures/lendsms_testplugin/pyproject.toml
	$(BIN)/pip install --quiet -e tests/fixtures/lendsms_testplugin
	touch $@

install: $(BIN)/.installed

## run: create a working embedded setup on first use, print a dev key and a curl command, serve
run: install
	@BIN=$(BIN) HOST=$(HOST) PORT=$(PORT) sh scripts/dev-setup.sh
	$(BIN)/lendsms serve --config lendsms.toml --host $(HOST) --port $(PORT)

## test: lint, type checks and the whole test suite
test: install lint typecheck unit

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy

unit: install $(BIN)/.test-plugin
	$(BIN)/pytest -q -p no:cacheprovider

bench: install
	@for b in bench/*.py; do [ -e "$$b" ] || continue; echo "== $$b"; $(BIN)/python "$$b" || exit 1; done

## bench-throughput: POST /v1/messages per second and latency (SQLite, Redis x1, x2, echo ceiling)
bench-throughput: install
	$(BIN)/python bench/throughput.py

## lock: re-pin constraints.txt to what the venv has installed (after a dependency change)
lock: install
	{ sed -n '1,/^# Regenerate/p' constraints.txt; $(BIN)/pip freeze --exclude-editable; } > constraints.tmp
	mv constraints.tmp constraints.txt

## audit-deps: known vulnerabilities in the pinned dependencies (needs the network;
## not part of `make test`). pip-audit lives in its own venv, outside the app's.
AUDIT_VENV ?= .venv-audit
audit-deps:
	[ -x $(AUDIT_VENV)/bin/pip-audit ] || { $(PYTHON) -m venv $(AUDIT_VENV) && \
		$(AUDIT_VENV)/bin/pip install --quiet pip-audit; }
	$(AUDIT_VENV)/bin/pip-audit --strict --no-deps --disable-pip -r constraints.txt

clean:
	rm -rf $(VENV) $(AUDIT_VENV) .pytest_cache .ruff_cache .mypy_cache build *.egg-info
