# Two entry points for a fresh machine: `make demo` (the main job on the local estate)
# and `make test` (the whole suite). Both install what they need first.
VENV ?= .venv
PY := $(VENV)/bin/python
TALY := $(VENV)/bin/taly

.PHONY: setup system-deps demo test test-unit bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[dev]'
	touch $@

system-deps:
	./scripts/install-system-deps
	./scripts/install-helm

demo: setup system-deps
	$(TALY) plan --env all
	$(TALY) plan --compare staging prod
	$(TALY) policy check --env all

test: setup system-deps
	$(PY) -m pytest

test-unit: setup
	$(PY) -m pytest tests/unit

bench: setup
	$(PY) benchmarks/bench_plan.py

clean:
	rm -rf $(VENV) .tools .pytest_cache
