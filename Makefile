# Quick start (see README):  make repro   - set up .venv/ and run the whole pipeline (dvc repro)
#                            make test    - set up .venv/ and run the test suite (make test-unit: no e2e)
PYTHON     ?= python3
VENV       := .venv
BIN        := $(VENV)/bin
UV_VERSION := 0.13.9

# Stage commands in dvc.yaml say `python`: make it the environment's.
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: repro test test-unit env lock clean tracking-server

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

env: $(VENV)/.installed

# The environment is rebuilt whenever the lockfile changes. Its modules are compiled to bytecode
# once here: every stage is a new Python process, and where PYTHONDONTWRITEBYTECODE is set none
# would be cached otherwise (importing torch, pandas and mlflow from source costs ~15 s a process).
$(VENV)/.installed: requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python -r requirements.lock
	touch $@

# Re-resolve the pinned versions from pyproject.toml (needs the network).
lock: env
	$(BIN)/uv pip compile pyproject.toml --all-extras --universal --python-version 3.11 -o requirements.lock

clean:
	rm -rf $(VENV) .cache
