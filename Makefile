# Quick start (see README):  make repro   - set up .venv/ and run the whole pipeline (dvc repro)
#                            make test    - set up .venv/ and run the test suite (make test-unit: no e2e)
#                            make doctor  - check this machine (GPU, driver, disk, datasets, MLflow) first
PYTHON     ?= python3
VENV       := .venv
BIN        := $(VENV)/bin
UV_VERSION := 0.13.9

# Stage commands in dvc.yaml say `python`: make it the environment's.
export PATH := $(CURDIR)/$(BIN):$(PATH)

# The lock's torch is PyPI's build for CUDA 13 (NVIDIA driver 580 or newer). For an older driver,
# the same pinned versions with another torch build: make env TORCH_BACKEND=cu126 (uv's
# --torch-backend: PyTorch's own index; cu126 runs on driver 525+ and on pre-Turing GPUs; if that
# index has no build of the pinned torch, uv says so: update the driver instead). The choice is
# remembered in .venv/torch-backend until `make clean`; changing it rebuilds .venv/ from scratch.
TORCH_BACKEND ?= $(shell cat $(VENV)/torch-backend 2>/dev/null)
STAMP      := $(VENV)/.installed-$(or $(TORCH_BACKEND),lock)

# make gpu-check: the venv's Python when there is one, else the machine's (an offline GPU node
# with a site-provided PyTorch: see docs/gpus.md).
GPU_PYTHON  = $(if $(wildcard $(BIN)/python),$(BIN)/python,$(PYTHON))
DEVICE     ?= cuda
SCALE      ?= full
BUDGET     ?= 540
PYTHON_VERSION ?= 3.12

.PHONY: repro test test-unit env lock clean tracking-server doctor gpu-check wheelhouse

# When stages fail (no network for a download, say), the scorecard is still built from what exists:
# reports/index.html then says which experiments ran and what the others need.
repro: env
	$(BIN)/dvc repro --keep-going || { status=$$?; echo "some stages failed (above); the scorecard shows what exists:"; \
	  $(BIN)/python -m stages.scorecard build; exit $$status; }

test: env
	$(BIN)/python -m pytest

# The unit tier: everything but the end-to-end runs of dvc on repository copies (marker e2e).
test-unit: env
	$(BIN)/python -m pytest -m "not e2e and not slow"

# A team's MLflow tracking server on PostgreSQL (README "Scaling out"), on 127.0.0.1:5000; ARGS go to
# python -m pipeline.scaleout.tracking_server, e.g. ARGS="--local-postgres ~/mlflow-server" for a
# PostgreSQL of its own, or ARGS="--backend-store-uri postgresql://user:pw@host:5432/mlflow".
tracking-server: env
	$(BIN)/python -m pipeline.scaleout.tracking_server $(ARGS)

env: $(STAMP)

# The environment is rebuilt whenever the lockfile (or TORCH_BACKEND) changes, and with it the page
# `dvc plots show` writes (Vega inlined from the environment's bundle: it draws offline). Its modules are
# compiled to bytecode once here: every stage is a new Python process, and where
# PYTHONDONTWRITEBYTECODE is set none would be cached otherwise (importing torch, pandas and mlflow
# from source costs ~15 s a process).
$(STAMP): requirements.lock
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python -r requirements.lock \
	  $(if $(TORCH_BACKEND),--torch-backend $(TORCH_BACKEND) --reinstall-package torch --reinstall-package torchvision)
	echo "$(TORCH_BACKEND)" > $(VENV)/torch-backend
	$(BIN)/python -m pipeline.plots_page || echo "(dvc plots show keeps DVC's own page, which loads Vega from a CDN)"
	touch $@

# Check this machine before hours of work: one table, exit 1 with one line per problem.
doctor: env
	$(BIN)/python -m pipeline.doctor

# Every GPU figure the project lacks in one command (its budget: BUDGET seconds, 540 by default,
# sized for one H100-class GPU; it stops early with what it has). DEVICE=cpu SCALE=smoke checks the script itself on a CPU in minutes.
# FASHION_MNIST=/path adds full-scale batch_size and autoencoder; ARGS go to benchmarks.gpu_check
# (e.g. ARGS="--steps 1,4 --out /tmp/results"). Not tied to `env`: on an offline
# node it runs on the node's own Python and PyTorch (docs/gpus.md).
gpu-check:
	$(GPU_PYTHON) -m benchmarks.gpu_check --device $(DEVICE) --scale $(SCALE) --budget $(BUDGET) \
	  $(if $(FASHION_MNIST),--fashion-mnist $(FASHION_MNIST)) $(ARGS)

# On a networked machine: the wheels an offline GPU node with its own PyTorch lacks for step 6 of
# gpu-check (dvc, mlflow, papermill and what they need), for Python PYTHON_VERSION, in wheelhouse/.
wheelhouse: env
	$(BIN)/python -m benchmarks.wheelhouse --python-version $(PYTHON_VERSION) --out wheelhouse

# Re-resolve the pinned versions from pyproject.toml (needs the network).
lock: env
	$(BIN)/uv pip compile pyproject.toml --all-extras --universal --python-version 3.11.4 -o requirements.lock

clean:
	rm -rf $(VENV) .cache
