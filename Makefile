# lookout — one entry point for operators and CI. `make help` lists the targets.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

VENV ?= .venv
BIN := $(CURDIR)/$(VENV)/bin
export PATH := $(BIN):$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
# Every scenario under molecule/, in the order the later ones build on the earlier ones.
SCENARIO_ORDER := default conduit monitoring grafana stack
EXISTING_SCENARIOS := $(sort $(patsubst molecule/%/molecule.yml,%,$(wildcard molecule/*/molecule.yml)))
SCENARIOS ?= $(filter $(EXISTING_SCENARIOS),$(SCENARIO_ORDER)) $(filter-out $(SCENARIO_ORDER),$(EXISTING_SCENARIOS))
MOLECULE_LOCK ?= /tmp/lookout-molecule.lock
ENV ?= demo

.PHONY: help setup lint collection unit unit-run molecule molecule-run test demo demo-down render clean-hosts bench-monitoring bench-frontend bench-preflight bench-alerts bench-scale

help: ## list targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

setup: ## venv, promtool/amtool, Docker engine, Debian 12/13 systemd images (idempotent, cached)
	scripts/setup.sh all

lint: setup collection ## yamllint, ansible-lint (production profile), ruff, actionlint; builds the collection
	yamllint --strict .
	ansible-lint --profile production
	ruff check .
	ruff format --check .
	scripts/actionlint.sh

collection: ## the roles as the collection lookout.stack: build/collection/lookout-stack-<version>.tar.gz (galaxy.yml)
	ansible-galaxy collection build --force --output-path build/collection

# Workers of the controller-side tests (pytest-xdist; 0: in this process). Whole files go to one worker
# (--dist loadfile): their module fixtures, live servers and the firewall test's containers run once.
UNIT_WORKERS ?= 2

unit: setup unit-run ## pytest: repo-level tests (rules, routes, templates, dashboards) on UNIT_WORKERS workers, then the app's suite

unit-run: # make unit without setup (scripts/unit-and-molecule.sh runs it beside molecule-run)
	pytest -c pytest.ini tests -n $(UNIT_WORKERS) --dist loadfile --durations=20
	cd app && pytest -ra

molecule: setup molecule-run ## every molecule scenario on local systemd containers (SCENARIOS=... to pick)

molecule-run: # make molecule without setup
	scripts/molecule-all.sh $(SCENARIOS)

# The unit suite runs beside the scenarios, at a lower priority (UNIT_NICE): scripts/unit-and-molecule.sh.
test: setup lint ## everything CI runs: lint, then unit and molecule side by side
	scripts/unit-and-molecule.sh

demo: setup ## deploy the demo inventory to local systemd containers
	scripts/demo.sh up

demo-down: ## remove the demo containers and network
	scripts/demo.sh down

render: setup ## render every monitoring config of ENV=<env> into build/<env>/ (VAULT_ID=<env>@<file> for vaulted envs)
	ansible-playbook -i inventories/$(ENV) playbooks/render.yml -e lookout_render_dir=$(CURDIR)/build/$(ENV) \
	  $(if $(VAULT_ID),--vault-id $(VAULT_ID))

bench-monitoring: setup ## anchor comparison: node_exporter+prometheus+blackbox+alertmanager on one fresh host, 3 runs
	bench/monitoring_bench.sh 3

bench-backup: ## backup, restore check and live restore of 10,000 articles on a throwaway PostgreSQL, 3 runs
	scripts/setup.sh venv && scripts/setup.sh tools && python bench/backup_bench.py

bench-frontend: ## GET /api/articles through HAProxy (TLS, the role's config) vs gunicorn directly, 20 VUs, 4 rounds
	scripts/setup.sh venv && scripts/setup.sh tools && python bench/frontend_bench.py --json artifacts/bench/frontend.json

bench-preflight: ## playbooks/preflight.yml --check on production's hosts and knobs, on this machine, 3 runs
	scripts/setup.sh venv && python bench/preflight_bench.py --rounds 3

bench-alerts: ## WebsiteDown/HighRequestRate: Slack message after `for` and after recovery, production's knobs, 5 outages (~10 min)
	scripts/setup.sh venv && scripts/setup.sh tools && python bench/alert_latency_bench.py --json artifacts/bench/alert-latency.json

# The scale bench: host counts (web hosts added to the demo's three); forks, strategy and web hosts per batch
# when set (bench/README.md: by default the larger of ansible.cfg's forks and the largest size, linear, 1).
SCALE_SIZES ?= 3 6 12

bench-scale: setup ## site.yml first converge and unchanged re-run on SCALE_SIZES (3 6 12) demo hosts; table, JSON, SVG
	python bench/scale_bench.py --sizes $(SCALE_SIZES) $(if $(SCALE_FORKS),--forks $(SCALE_FORKS)) \
	  $(if $(SCALE_STRATEGY),--strategy $(SCALE_STRATEGY)) $(if $(SCALE_SERIAL),--serial $(SCALE_SERIAL)) \
	  --json artifacts/bench/scale.json --svg artifacts/bench/scale.svg

clean-hosts: ## remove every lookout test container and network left behind
	scripts/cleanup.sh
