# glassbox: the two commands are `make deploy` and `make test`; the rest are their parts.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

VENV      ?= .venv
PYTHON    ?= python3
BIN       := $(VENV)/bin
STAMP     := $(VENV)/.glassbox-installed
INVENTORY ?= inventories/local
export PATH := $(CURDIR)/$(BIN):$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

$(STAMP): requirements.txt requirements-model.txt requirements-realstack.txt scripts/bootstrap-venv.sh
	scripts/bootstrap-venv.sh $(VENV) $(PYTHON)
	@touch $@

.PHONY: venv
venv: $(STAMP) ## create .venv with the pinned toolchain

.PHONY: deploy
deploy: $(STAMP) ## deploy the whole stack to INVENTORY (default: this machine)
	$(BIN)/ansible-playbook -i $(INVENTORY) site.yml

.PHONY: smoke
smoke: $(STAMP) ## run the smoke suite against the deployed stack (reads the app .env)
	$(BIN)/pytest smoke

.PHONY: lint
lint: $(STAMP) ## yamllint, ansible-lint (production profile), ruff
	$(BIN)/yamllint --strict .
	$(BIN)/ansible-lint
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

.PHONY: test-unit
test-unit: $(STAMP) ## the fast loop: unit and argument tests, one wiring render, on every core
	$(BIN)/pytest tests -m "not realstack and not slow and not roles" -n auto --dist loadfile

.PHONY: test-roles
test-roles: $(STAMP) ## contracts and whole roles by real ansible-playbook on faked local hosts (batched)
	$(BIN)/pytest tests -m "roles" -n auto --dist loadfile

.PHONY: test-standin
test-standin: $(STAMP) ## pytest smoke's failure messages against the stand-in LLM and the fault double
	$(BIN)/pytest tests -m "slow and not realstack"

.PHONY: test-realstack
test-realstack: $(STAMP) ## the smoke suite against the real Langfuse v4 from source (builds once, cached)
	$(BIN)/pytest tests -m realstack -s

.PHONY: realstack
realstack: $(STAMP) ## start the real Langfuse stack + stand-in LLM and keep it up (Ctrl-C stops it)
	$(BIN)/python -m tests.realstack up

.PHONY: test-host
test-host: ## start dockerd and build the offline Debian 13 image if missing (root)
	scripts/test-host.sh all

.PHONY: test-molecule
test-molecule: $(STAMP) test-host ## molecule test: converge site.yml on a Debian 13 systemd container
	$(BIN)/molecule test -s default

.PHONY: test
test: lint test-unit test-roles test-standin test-realstack test-molecule ## everything CI runs

.PHONY: clean
clean: ## remove the venv and Molecule instances (keeps the cached base image)
	-$(BIN)/molecule destroy -s default
	rm -rf $(VENV) .pytest_cache .ruff_cache
