# Task API — developer entry points. Offline unless noted: `make dev` and `make test` need only
# Python 3.11+ (with `python3.11` on PATH for `sam build`) and make; they create their own
# virtualenvs from PyPI.
#
#   make dev      the local stack (moto + uvicorn) on http://127.0.0.1:8000
#                 (TASKAPI_PORT, TASKAPI_AWS_PORT, AWS_ENDPOINT_URL pass through)
#   make test     lint, sam build, packaging check of the build, then every test but tests/perf
#                 (PYTEST_WORKERS=0 runs the in-process suites without parallel workers)
#   make lint     ruff (lint + format check), mypy, cfn-lint and sam validate --lint
#   make typecheck  mypy over shared/ and infra/, then each function's handler (part of lint)
#   make build    sam build for this machine's architecture (.aws-sam/build)
#   make bench    the benchmarks in tests/perf
#   make deploy   sam build for DEPLOY_ARCH, then sam deploy (needs real AWS credentials)
#   make install  only the dev virtualenv (.venv)
#   make clean    remove build output and caches (keeps the virtualenvs)

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
.DELETE_ON_ERROR:

PYTHON ?= python3
VENV ?= .venv
VENV_PY := $(VENV)/bin/python
VENV_STAMP := $(VENV)/.installed-dev

# AWS SAM CLI pins its own boto3, so it lives in a virtualenv of its own.
SAM_CLI_VERSION ?= 1.170.0
SAM_VENV ?= .venv-sam
SAM := $(SAM_VENV)/bin/sam
SAM_STAMP := $(SAM_VENV)/.installed-$(SAM_CLI_VERSION)
export SAM_CLI_TELEMETRY := 0

TEMPLATE := template.yaml
# Explicit, because SAM otherwise looks for samconfig.toml next to the template it is given.
SAM_CONFIG := --config-file $(CURDIR)/samconfig.toml
# Only `sam validate` needs a region, and only to name one: it is run offline.
LINT_REGION ?= us-east-1

# The functions are built for this machine's instruction set, so that the packaging check can
# import the built handlers (the layer carries native wheels: pydantic-core, cryptography).
UNAME_M := $(shell uname -m)
ARCH_x86_64 := x86_64
ARCH_amd64 := x86_64
ARCH_aarch64 := arm64
ARCH_arm64 := arm64
ARCH ?= $(ARCH_$(UNAME_M))

# Deploys build separately, for the architecture Lambda runs (arm64 is the template default).
DEPLOY_ARCH ?= arm64
DEPLOY_BUILD_DIR := .aws-sam/deploy/build
DEPLOY_CACHE_DIR := .aws-sam/deploy/cache
# More CloudFormation parameters for `make deploy`, e.g. DEPLOY_PARAMETERS="JwtIssuer=https://..."
DEPLOY_PARAMETERS ?=

PYTEST ?= $(VENV_PY) -m pytest
PYTEST_ARGS ?=
BENCH ?= $(VENV_PY) -m pytest tests/perf -q -s
BENCH_ARGS ?=

.PHONY: help install dev test lint typecheck build test-packaging test-python bench deploy clean

help: ## Show the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-15s %s\n", $$1, $$2}'

# ------------------------------------------------------------------ virtualenvs

$(VENV_PY):
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null || { \
	  echo "error: '$(PYTHON)' is missing or older than Python 3.11 (found: $$($(PYTHON) --version 2>&1 || true))." >&2; \
	  echo "       Install Python 3.11+ or point at it: make PYTHON=/path/to/python3.11 ..." >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)

# Re-installs only when pyproject.toml changes (or the stamp is gone).
$(VENV_STAMP): pyproject.toml | $(VENV_PY)
	@$(VENV_PY) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' || { \
	  echo "error: $(VENV) runs Python older than 3.11; remove it and run make again." >&2; exit 1; }
	$(VENV_PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $@

$(SAM_STAMP):
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null || { \
	  echo "error: '$(PYTHON)' is missing or older than Python 3.11; set PYTHON=/path/to/python3.11" >&2; exit 1; }
	rm -rf $(SAM_VENV)
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/python -m pip install --quiet --disable-pip-version-check 'aws-sam-cli==$(SAM_CLI_VERSION)'
	@touch $@

install: $(VENV_STAMP) ## Create/refresh the dev virtualenv (.venv)

# ------------------------------------------------------------------ run

dev: $(VENV_STAMP) ## Serve the API offline on the local stack
	$(VENV_PY) -m infra.local_stack

# ------------------------------------------------------------------ checks

lint: $(VENV_STAMP) $(SAM_STAMP) ## ruff (lint + format check), mypy, cfn-lint, sam validate --lint
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(MAKE) --no-print-directory typecheck
	$(VENV)/bin/cfn-lint $(TEMPLATE)
	$(SAM) validate $(SAM_CONFIG) --lint --template-file $(TEMPLATE) --region $(LINT_REGION)

typecheck: $(VENV_STAMP) ## mypy over pyproject.toml's files, then each function's handler
	$(VENV)/bin/mypy
	@for handler in functions/*/app.py; do $(VENV)/bin/mypy "$$handler" || exit 1; done

build: $(SAM_STAMP) ## sam build for this machine's architecture
	@test -n "$(ARCH)" || { echo "error: no Lambda architecture for machine '$(UNAME_M)' (set ARCH=x86_64 or ARCH=arm64)" >&2; exit 1; }
	@command -v python3.11 >/dev/null || { \
	  echo "error: sam build needs 'python3.11' on PATH (the functions' runtime is python3.11)" >&2; exit 1; }
	$(SAM) build $(SAM_CONFIG) --template-file $(TEMPLATE) --parameter-overrides Architecture=$(ARCH)

# Imports every built handler in a clean interpreter. TASKAPI_REQUIRE_BUILD turns "no build" into
# a failure instead of a skip.
test-packaging: $(VENV_STAMP)
	TASKAPI_REQUIRE_BUILD=1 $(PYTEST) tests/packaging -q $(PYTEST_ARGS)

# Every test directory but perf (benchmarks) and packaging (run above): the in-process suites on
# PYTEST_WORKERS workers (pytest-xdist), then tests/e2e on its own, since each e2e session runs a
# local stack (two processes) that would compete with the workers for the cores. Both always run.
# Exit 5 is pytest's "no tests collected", which is not a failure while the suites are being written.
PYTEST_WORKERS ?= auto
test-python: $(VENV_STAMP)
	@status=0; $(PYTEST) -n $(PYTEST_WORKERS) --ignore=tests/perf --ignore=tests/packaging --ignore=tests/e2e \
	  $(PYTEST_ARGS) || status=$$?; \
	if [ $$status -eq 5 ]; then echo "pytest: no tests collected outside tests/e2e, tests/packaging and tests/perf"; status=0; fi; \
	e2e=0; $(PYTEST) tests/e2e $(PYTEST_ARGS) || e2e=$$?; \
	if [ $$e2e -eq 5 ]; then echo "pytest: no tests collected in tests/e2e"; e2e=0; fi; \
	[ $$status -eq 0 ] && [ $$e2e -eq 0 ]

# Sequential on purpose (the build must finish before the packaging check reads it), even under -j.
test: ## lint, build, packaging check, then every test but tests/perf
	$(MAKE) --no-print-directory lint
	$(MAKE) --no-print-directory build
	$(MAKE) --no-print-directory test-packaging
	$(MAKE) --no-print-directory test-python

bench: $(VENV_STAMP) ## Benchmarks (tests/perf); override BENCH / BENCH_ARGS
	$(BENCH) $(BENCH_ARGS)

# ------------------------------------------------------------------ AWS

# Needs real AWS credentials (AWS_PROFILE or the usual variables) and network access to AWS.
# Settings come from samconfig.toml [default.deploy.parameters]; the change set is shown for
# confirmation before anything is executed.
deploy: $(SAM_STAMP) ## Build for DEPLOY_ARCH and deploy with samconfig.toml (real AWS credentials)
	$(SAM) build $(SAM_CONFIG) --template-file $(TEMPLATE) --build-dir $(DEPLOY_BUILD_DIR) --cache-dir $(DEPLOY_CACHE_DIR) \
	  --parameter-overrides Architecture=$(DEPLOY_ARCH)
	$(SAM) deploy $(SAM_CONFIG) --template-file $(DEPLOY_BUILD_DIR)/template.yaml \
	  --parameter-overrides Architecture=$(DEPLOY_ARCH) $(DEPLOY_PARAMETERS)

clean: ## Remove build output and caches (keeps .venv and .venv-sam)
	rm -rf .aws-sam .pytest_cache .mypy_cache .ruff_cache .hypothesis
	find . -path ./$(VENV) -prune -o -path ./$(SAM_VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +
