# modeldeploy: `make demo` shows it working on a local cluster; `make test` runs every test.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
KUBECTL := .cluster/bin/kubectl --kubeconfig .cluster/kubeconfig
PYTEST_ARGS ?=
PYTHON_SOURCES := operator tests bench

.PHONY: install test unit test-cluster lint format typecheck crds demo demo-down cluster-up cluster-down cluster-status binaries image bench bench-real clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

# Every test: unit tests in milliseconds, then the cluster tests (the local cluster is
# brought up once by tests/cluster/conftest.py, or taken from MODELDEPLOY_TEST_KUBECONFIG).
# The e2e tests bring up the real node (hack/cluster up --real-node) where this machine can run
# containers; elsewhere they skip with the reason, except under CI=true.
test: install
	hack/test-deps
	$(BIN)/pytest $(PYTEST_ARGS)

unit: install
	$(BIN)/pytest -m 'not cluster' $(PYTEST_ARGS)

test-cluster: install
	$(BIN)/pytest -m cluster $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check $(PYTHON_SOURCES) hack/cluster hack/crd-to-v1.py hack/realnode.py hack/model-store
	$(BIN)/ruff format --check $(PYTHON_SOURCES) hack/realnode.py hack/model-store
	$(BIN)/mypy

format: install
	$(BIN)/ruff check --fix $(PYTHON_SOURCES)
	$(BIN)/ruff format $(PYTHON_SOURCES)

crds: install
	$(BIN)/modeldeploy crd > crds/modeldeploy.io_modeldeployments.yaml
	$(BIN)/modeldeploy crd --kind ModelRuntime > crds/modeldeploy.io_modelruntimes.yaml
	cp crds/modeldeploy.io_modeldeployments.yaml crds/modeldeploy.io_modelruntimes.yaml charts/modeldeploy/crds/
	$(BIN)/modeldeploy api-docs > docs/api.md

binaries:
	hack/build-binaries.sh all

# The images without Docker (root; buildah, podman): localhost/modeldeploy:dev, the sample model
# server and pause images, their archives in ~/.cache/modeldeploy/images, and a smoke test.
image:
	hack/images/build modeldeploy sample-server pause smoke

# REAL_NODE=1 adds real-1, a node that runs containers (root, overlayfs and cgroup v1 needed).
cluster-up:
	hack/cluster up $(if $(REAL_NODE),--real-node)

cluster-down:
	hack/cluster down

cluster-status:
	hack/cluster status

demo: install
	hack/demo up

demo-down:
	hack/demo down

# Figures of the operator beside Flagger on the local cluster (docs/performance.md).
bench: install cluster-up
	$(BIN)/pip install -q -e '.[test,bench]'
	$(PY) -m bench.run

# Time from `kubectl apply` to the first correct prediction on the real node, by phase.
bench-real: install
	$(PY) -m bench.real_serving

clean: cluster-down
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
