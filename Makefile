# Two entry points for a fresh machine: `make demo` (the main job on the local estate)
# and `make test` (the whole suite). Both install what they need first.
VENV ?= .venv
PY := $(VENV)/bin/python
TALY := $(VENV)/bin/taly
# The local estate's state directory: somewhere the `postgres` user can enter (not under /root).
export TALY_LOCAL_STATE ?= /tmp/taly-local-$(shell id -un)

.PHONY: setup system-deps demo down test test-unit bench clean

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
	$(TALY) local up
	KUBECONFIG=$(TALY_LOCAL_STATE)/kubeconfig .tools/bin/kubectl --context taly-local get deploy,pods -o wide
	-$(TALY) health --env local
	$(TALY) plan --env all
	$(TALY) plan --compare staging prod
	$(TALY) policy check --env all
	$(TALY) backup create --env local
	$(TALY) drill restore --env local
	@echo
	@echo "The local estate is still running. To use it from your shell:"
	@echo "  export TALY_LOCAL_STATE=$(TALY_LOCAL_STATE); $(TALY) local status"
	@echo "Its cluster, with kubectl:"
	@echo "  export KUBECONFIG=$(TALY_LOCAL_STATE)/kubeconfig; .tools/bin/kubectl --context taly-local get pods"
	@echo "Stop it with: make down"

down:
	$(TALY) local down

test: setup system-deps
	$(PY) -m pytest

test-unit: setup
	$(PY) -m pytest tests/unit

bench: setup system-deps
	$(PY) benchmarks/bench_plan.py
	$(PY) benchmarks/bench_health.py
	$(PY) benchmarks/bench_local.py
	$(PY) benchmarks/bench_cluster.py
	$(PY) benchmarks/bench_refresh.py
	$(PY) benchmarks/bench_drill.py   # ~1 GB database: a few minutes

clean:
	rm -rf $(VENV) .tools .pytest_cache
