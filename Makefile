# scengrid developer commands. Each target sets up what it needs (.venv via uv) by itself.
SHELL := /bin/bash
PYTHON ?= python3
UV_VERSION := 0.13.9
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
RUN := $(UV) run --frozen --no-sync
# Installed packages come with their bytecode, so that no interpreter (a local job, a test)
# compiles a library from source at import, even where PYTHONDONTWRITEBYTECODE is set.
export UV_COMPILE_BYTECODE := 1

.PHONY: help venv demo test test-fast lint schemas bench clean model

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  make %-10s %s\n", $$1, $$2}'

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(VENV)/.synced: $(UV) pyproject.toml shared/pyproject.toml shared/cli/pyproject.toml uv.lock
	$(UV) sync --frozen --quiet
	$(VENV)/bin/python -m compileall -q -j 0 shared/scengrid shared/cli/scengrid_cli services tests >/dev/null
	@touch $@

venv: $(VENV)/.synced ## create .venv with the locked dependencies

demo: venv ## run the whole pipeline locally (SCENARIOS=N to change the size)
	$(RUN) scengrid demo $(if $(SCENARIOS),--scenarios $(SCENARIOS),)

test: venv ## unit, integration and end-to-end tests, plus lint of the template
	$(RUN) pytest -q

test-fast: venv ## unit tests only
	$(RUN) pytest -q tests/unit

lint: venv ## cfn-lint the template
	$(RUN) cfn-lint infra/template.yaml

schemas: venv ## regenerate infra/schemas/ (events) and infra/openapi.json (API)
	$(RUN) python -m scengrid_cli.schemas --write
	$(RUN) python -m services.tracker.openapi --write

bench: venv ## benchmarks (JSON on stdout); syncs the bench group (Dask, Ray, Lithops) for the pipeline benchmark
	$(UV) run --frozen --group bench python tests/bench/bench_kernel.py
	$(UV) run --frozen --group bench python tests/bench/bench_pipeline.py --json
	$(UV) run --frozen --group bench python tests/bench/bench_scaling.py
	$(UV) run --frozen --group bench python tests/bench/bench_collator.py
	$(UV) run --frozen --group bench python tests/bench/bench_inference.py
	$(UV) run --frozen --group bench python tests/bench/bench_concurrency.py

model: venv ## train the PD model into build/models/ (LARGE=1: the >= 100 MB variant, pd-large.onnx)
	$(RUN) python -m scengrid_cli.training.train --out build/models $(if $(LARGE),--large,)

clean: ## remove the virtualenvs, local results and trained models
	rm -rf $(VENV) $(TOOLS) runs build .pytest_cache

.PHONY: deploy teardown

deploy: ## build and push the images, deploy the stack to AWS (docs/deploy.md; ENV_NAME, AWS_REGION; MODEL=PATH: a model package, docs/models.md)
	scripts/deploy up

teardown: ## delete the AWS stack; its data stays unless PURGE=1
	scripts/deploy teardown $(if $(PURGE),--purge,)

.PHONY: base-image images

base-image: ## a local stand-in for python:3.11-slim-bookworm (debootstrap), where registries cannot be reached
	scripts/container-engine && scripts/base-image

IMAGES := sharder worker collator tracker inference

MODEL_IMAGES := sharder worker collator

# stdout: one JSON line per image (build_s, size_bytes); the engine's output goes to stderr.
# MODEL=PATH: then the images that load the model with the package at PATH installed,
# scengrid-<service>:model-<name>-<version> (docs/models.md).
images: ## build the five service images as scengrid-<service>:local with podman or docker (docs/containers.md); MODEL=PATH adds a model package's
	@scripts/container-engine >&2 && scripts/base-image >&2
	@for service in $(IMAGES); do scripts/build-image $$service --build-arg UV_VERSION=$(UV_VERSION) || exit 1; done
	@$(if $(MODEL),for service in $(MODEL_IMAGES); do scripts/build-image --model "$(MODEL)" $$service || exit 1; done,:)
