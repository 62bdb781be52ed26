# hedgefund-lite: `make demo` runs the whole trading path locally, `make test` the tests.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: security install lock up down logs ps smoke compose-check demo test test-fast test-browser check lint types imports bench bench-dashboard chaos chaos-ci risk-soak fuzz clean

install: $(STAMP)

# Dependencies from the hashed lock (the image installs requirements.lock, the same pins
# without the dev and local extras); then the project itself, editable, without resolving.
$(STAMP): pyproject.toml requirements-dev.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --require-hashes -r requirements-dev.lock
	$(BIN)/pip install --quiet --no-deps -e .
	touch $(STAMP)

# Re-pin both locks after a change to pyproject.toml (tests/unit/deploy checks they agree).
UV_COMPILE := $(BIN)/uv pip compile pyproject.toml --python-version 3.11 \
  --python-platform x86_64-manylinux_2_36 --generate-hashes --quiet
lock: install
	$(UV_COMPILE) -o requirements.lock
	$(UV_COMPILE) --extra dev --extra local -o requirements-dev.lock

# The compose stack (docs/deployment.md). CLUSTER=1 adds docker/compose.cluster.yaml;
# `make down V=1` also deletes the volumes (Kafka log, ClickHouse data, recovery stores).
COMPOSE := docker compose -p hfl --env-file .env -f docker/compose.yaml \
  $(if $(CLUSTER),-f docker/compose.cluster.yaml)
SMOKE_TIMEOUT_S ?= 180

.env:
	@echo "copy .env.example to .env and set its passwords first" >&2; exit 1

up: .env
	$(COMPOSE) up -d --build

down:
	$(COMPOSE) down --remove-orphans $(if $(V),--volumes)

logs:
	$(COMPOSE) logs -f --tail=200

ps:
	$(COMPOSE) ps

smoke: .env
	COMPOSE="$(COMPOSE)" SMOKE_TIMEOUT_S=$(SMOKE_TIMEOUT_S) sh docker/smoke.sh

# What CI checks without a Docker engine: both compose files through Debian's docker-compose
# (`apt-get install docker-compose`; its parser and schema need no daemon), the Dockerfile
# lint, and the stack's consistency with the code (docs/deployment.md).
compose-check: install
	$(BIN)/pytest -q tests/unit/deploy

demo: install
	$(BIN)/hfl demo

test: install
	$(BIN)/pytest -q

test-fast: install
	$(BIN)/pytest -q -m "not integration and not chaos"

test-browser: install
	$(BIN)/pytest -q tests/browser

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

types: install
	$(BIN)/mypy --strict risk online_models

imports: install
	$(BIN)/lint-imports

check: lint types imports test

bench: install
	$(BIN)/hfl bench pipeline --rate 5000 --duration 20
	$(BIN)/hfl bench pipeline --rate max --duration 20

bench-dashboard: install
	$(BIN)/hfl bench dashboard --clients 10 --duration 20

# The risk gate's state machine far beyond CI's 1,000 examples.
risk-soak: install
	HFL_HYPOTHESIS_MAX_EXAMPLES=20000 $(BIN)/pytest -q tests/property/test_gate_state_machine.py

# Coverage-guided fuzzing (atheris) of every decoder: FUZZ_RUNS executions each, one
# line per decoder with executions and uncaught exceptions; findings in var/fuzz/.
# The normal test run has a bounded slice (tests/fuzz/test_fuzz_slice.py).
FUZZ_RUNS ?= 1000000
fuzz: install
	$(BIN)/python tests/fuzz/run.py --runs $(FUZZ_RUNS)

# Fault injection on the real stack (tests/chaos): R1-R7 on a 200,000-tick replay with
# 20 kills per flow, then the figures. `chaos-ci` is the bounded form CI runs. Each
# starts from an empty results file and prints the report even when a test failed
# (the exit status stays the tests'); `make chaos` stops after CHAOS_TIMEOUT_S, having
# run the tests in CHAOS_TESTS order: R1/R3 first, R0 (a second fault-free run) last.
CHAOS_CI_TESTS := tests/chaos/test_crash_recovery.py tests/chaos/test_journal_recovery.py \
  tests/chaos/test_fail_closed.py
CHAOS_TESTS := $(CHAOS_CI_TESTS) $(addprefix tests/chaos/,test_silent_loss.py \
  test_component_recovery.py test_clickhouse_faults.py test_broker_pause.py \
  test_broker_restart.py test_golden.py)
CHAOS_RESULTS := var/chaos/results.json
CHAOS_TIMEOUT_S ?= 7200

chaos: install
	rm -f $(CHAOS_RESULTS)
	HFL_CHAOS_TICKS=200000 HFL_CHAOS_KILLS=20 timeout $(CHAOS_TIMEOUT_S) \
	  $(BIN)/pytest -q -s -m chaos $(CHAOS_TESTS); status=$$?; $(BIN)/hfl chaos report; exit $$status

chaos-ci: install
	rm -f $(CHAOS_RESULTS)
	HFL_CHAOS_TICKS=40000 HFL_CHAOS_KILLS=5 $(BIN)/pytest -q -s -m chaos $(CHAOS_CI_TESTS); \
	  status=$$?; $(BIN)/hfl chaos report; exit $$status

# The attack suite (issue 15): a fresh local stack on loopback, every probe, one JSON
# line; exit status 0 only when every probe was refused. Bounded (about two minutes).
security: install
	timeout 600 $(BIN)/python -m dataflows.ops.attack

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache .hypothesis
