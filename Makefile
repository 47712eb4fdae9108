# Kefu — `make help` lists the targets. Two Python 3.10 environments live in the checkout:
# .venv-engine (Rasa) and .venv-app (gateway, actions, tests); nobody activates them by hand.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PY310 := $(shell scripts/find-python310.sh)
ifeq ($(PY310),)
$(error No working Python 3.10 found; see the message above)
endif
UV_VERSION := 0.13.9
TOOLS := .venv-tools
ENGINE := .venv-engine
APP := .venv-app
UV := $(TOOLS)/bin/uv
RASA := PYTHONPATH=. $(ENGINE)/bin/rasa
APP_PY := $(APP)/bin/python
MODEL_ID = $(shell $(PY310) scripts/model_id.py)
MODEL = models/kefu-$(MODEL_ID).tar.gz
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: help install train validate init seed run test test-fast lint bench bench-crm bench-ops eval retrain lock clean

help: ## Show this help
	@grep -hE '^[a-z][a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN{FS=":.*?## "}{printf "  \033[36m%-10s\033[0m %s\n", $$1, $$2}'

$(TOOLS)/.installed:
	$(PY310) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install -q --disable-pip-version-check uv==$(UV_VERSION)
	@touch $@

$(ENGINE)/.installed: requirements/engine.lock $(TOOLS)/.installed
	$(UV) venv -q --allow-existing --python $(PY310) $(ENGINE)
	$(UV) pip sync -q --python $(ENGINE)/bin/python requirements/engine.lock
	@touch $@

$(APP)/.installed: requirements/app.lock $(TOOLS)/.installed
	$(UV) venv -q --allow-existing --python $(PY310) $(APP)
	$(UV) pip sync -q --python $(APP_PY) requirements/app.lock
	@touch $@

install: $(ENGINE)/.installed $(APP)/.installed ## Build both Python 3.10 environments from the lock files

lock: $(TOOLS)/.installed ## Re-resolve requirements/*.in into the lock files
	for env in engine app; do $(UV) pip compile -q --generate-hashes --python-version 3.10 \
	  --python-platform x86_64-manylinux_2_28 requirements/$$env.in -o requirements/$$env.lock; done

train: install ## Train the model if config, domain, data or engine code changed
	@if [ -f "$(MODEL)" ]; then echo "model up to date: $(MODEL)"; else \
	  mkdir -p models; start=$$(date +%s); \
	  $(RASA) train --fixed-model-name kefu-$(MODEL_ID) --out models 2>&1 | tee models/train.log; \
	  status=$${PIPESTATUS[0]}; \
	  if grep -q "Misaligned entity annotation" models/train.log; then \
	    echo "entity spans do not line up with tokens (models/train.log)"; rm -f $(MODEL); exit 1; fi; \
	  [ $$status -eq 0 ] || exit $$status; \
	  echo "trained $(MODEL) in $$(( $$(date +%s) - start )) s"; fi

validate: install ## Check NLU data (counts, duplicates, token alignment) and rasa data validate
	$(ENGINE)/bin/python scripts/check_nlu_data.py
	PYTHONPATH=. $(ENGINE)/bin/python scripts/validate_data.py

init: install ## Generate secrets on first run and migrate the database
	$(APP_PY) -m bot.cli init

seed: init ## Load the demo store into an empty database, and one console account per role
	$(APP_PY) -m bot.cli seed
	$(APP_PY) -m bot.cli seed-staff

run: train seed ## Install, train if needed, migrate, seed, start everything
	@echo "Starting Rasa, the action server and the API (Ctrl-C stops all)…"
	@echo "Demo shopper login token (C00001 张伟): $$($(APP_PY) -m bot.cli customer-token C00001)"
	KEFU_MODEL=$(MODEL) $(APP)/bin/honcho start -f Procfile

test: train ## Run the whole test suite (starts its own Rasa, action server, API, PostgreSQL)
	KEFU_MODEL=$(MODEL) $(APP_PY) -m pytest $(PYTEST_ARGS)

test-fast: install ## Unit tests only (no Rasa, no PostgreSQL)
	$(APP_PY) -m pytest -m "not integration and not postgres" $(PYTEST_ARGS)

lint: install ## ruff (lint and format check) and mypy
	$(APP)/bin/ruff check .
	$(APP)/bin/ruff format --check .
	$(APP)/bin/mypy

eval: train ## Measure NLU on the held-out set (per language); fails below the targets
	PYTHONPATH=. $(ENGINE)/bin/python scripts/eval_nlu.py --model $(MODEL)

retrain: train init ## Retrain with the reviewed corrections, evaluate, gate (see /console/models)
	$(APP_PY) -m bot.cli retrain

bench: train ## Turn latency through the gateway vs straight to Rasa, same run; then ops review over 1M messages
	KEFU_MODEL=$(MODEL) $(APP_PY) bench/turn_latency.py
	$(APP_PY) bench/ops.py --messages $(or $(MESSAGES),1000000)

bench-crm: install ## CRM at scale on a temporary PostgreSQL: 2M customers, 10M orders (SCALE=0.001 for a smoke run)
	$(APP_PY) bench/crm.py --scale $(or $(SCALE),1)

bench-ops: install ## Ops review at scale on a temporary PostgreSQL: list, filters, search over 1M messages (MESSAGES=20000 for a smoke run)
	$(APP_PY) bench/ops.py --messages $(or $(MESSAGES),1000000)

clean: ## Remove environments, models and local data
	rm -rf $(TOOLS) $(ENGINE) $(APP) models var .pytest_cache .mypy_cache .ruff_cache
