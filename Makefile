# Every routine task. `make` (or `make help`) lists them.
SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

# Cargo's target dir: respected when set outside, else kept out of the clone so fresh
# checkouts (CI) reuse earlier builds.
CARGO_TARGET_DIR ?= $(HOME)/.cache/keel/target
export CARGO_TARGET_DIR
# The Python tools' venv (git-ignored when inside the repo).
VENV ?= .venv
# Where `make image` tags the production image.
IMAGE ?= keel:local
# Binaries that no package manager here installs (helm), kept outside the clone like the target dir.
TOOLS_BIN ?= $(HOME)/.cache/keel/tools/bin
# make deny: the checks that need no network (CI adds advisories, DENY_OFFLINE= lets cargo fetch).
DENY_CHECKS ?= licenses bans sources
DENY_OFFLINE ?= --offline
# make migrations-lint: the files squawk reads (CI passes only those a pull request adds).
MIGRATIONS ?= app/migrations/*.sql
# make coverage: where lcov.info and html/ go.
COVERAGE_DIR ?= $(CARGO_TARGET_DIR)/coverage
# Port of the long-lived development database of `make db-up`.
PG_PORT ?= 5432
# The compose command: the plugin where Docker has it, else the standalone docker-compose.
COMPOSE ?= $(shell docker compose version >/dev/null 2>&1 && echo "docker compose" || echo docker-compose)
OBS_COMPOSE = $(COMPOSE) -p keel-obs -f observability/compose.yaml
KEEL := $(CARGO_TARGET_DIR)/debug/keel
# Every cargo command builds the same selection (the whole workspace, tests included), so the
# tests crate's extra dependency features never force a second build of shared crates.
CARGO_BUILD := cargo build --workspace --all-targets --locked
export KEEL_BIN := $(KEEL)
TOOLS_STAMP := $(VENV)/.installed-$(shell sha256sum tools/requirements.txt | cut -c1-16)

.PHONY: help run seed test lint fmt openapi db-up db-down pg-image tools \
	build unit-test integration-test contract-test docs-browser-test sqlx-check sqlx-prepare spec-check infra-check \
	image image-test dockerfile-lint helm-check helm-golden remove-example remove-example-test scripts-test \
	obs-up obs-down obs-check bench bench-quick deny workflows-check migrations-lint coverage

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

run: build ## Serve on http://127.0.0.1:8080 (docs at /docs), demo data loaded, on a disposable PostgreSQL unless APP__DATABASE__URL is set
	scripts/with-postgres.sh bash -c '"$$1" migrate && "$$1" seed && exec "$$1" serve' run $(KEEL)

seed: build ## Load every feature's demo data into APP__DATABASE__URL (default: the make db-up database)
	$(KEEL) seed

test: ## Everything: unit, integration (real PostgreSQL), OpenAPI spec, sqlx data, contract fuzzing, Swagger UI in a browser, image, chart, observability, infrastructure, workflows, migrations, remove-example
	$(MAKE) build
	$(MAKE) unit-test
	$(MAKE) scripts-test
	$(MAKE) workflows-check
	$(MAKE) migrations-lint
	$(MAKE) integration-test
	$(MAKE) spec-check
	$(MAKE) sqlx-check
	$(MAKE) contract-test
	$(MAKE) docs-browser-test
	$(MAKE) image-test
	$(MAKE) helm-check
	$(MAKE) obs-check
	$(MAKE) infra-check
	$(MAKE) remove-example-test

lint: ## cargo fmt --check, clippy -D warnings, shellcheck, hadolint + checkov on the Dockerfile, cargo-deny
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets --locked -- -D warnings
	shellcheck -x scripts/*.sh scripts/lib/*.sh docker/postgres/*.sh infra/check.sh helm/check.sh observability/check.sh .ci/run
	$(MAKE) dockerfile-lint
	$(MAKE) deny

# The metadata of the platform that ships (deny.toml [graph]): cargo metadata of every platform
# would need crates no Linux build downloads, so it could not run offline.
deny: ## cargo-deny (deny.toml): licenses, bans and sources of the dependency graph, offline; CI adds advisories
	@command -v cargo-deny >/dev/null || { echo "deny: cargo install --locked cargo-deny --version 0.20.2 (.ci/run does)" >&2; exit 1; }
	mkdir -p $(CARGO_TARGET_DIR)
	cargo metadata --locked $(DENY_OFFLINE) --format-version 1 --filter-platform x86_64-unknown-linux-gnu \
	  >$(CARGO_TARGET_DIR)/deny-metadata.json
	cargo deny --metadata-path $(CARGO_TARGET_DIR)/deny-metadata.json check --hide-inclusion-graph $(DENY_CHECKS)

workflows-check: tools ## .github/: SHA pins, version comments and make targets (tools/check_workflows.py, self-tested), actionlint + shellcheck, zizmor, checkov
	$(VENV)/bin/python tools/check_workflows.py --self-test
	$(VENV)/bin/python tools/check_workflows.py --checkov $(VENV)/bin/checkov
	PATH="$(VENV)/bin:$$PATH" actionlint
	$(VENV)/bin/zizmor --offline --min-severity medium .github

migrations-lint: tools ## squawk on app/migrations (MIGRATIONS=files for some); rules and their reasons in .squawk.toml
	$(VENV)/bin/squawk --config .squawk.toml $(MIGRATIONS)

# Instrumented in a target dir of its own, so the normal build stays; the integration tests
# spawn that instrumented keel (KEEL_BIN), so the server's code counts too.
coverage: ## Line coverage of the unit and integration tests (cargo-llvm-cov): COVERAGE_DIR/lcov.info and html/
	export CARGO_TARGET_DIR="$(CARGO_TARGET_DIR)/coverage-build"; \
	eval "$$(cargo llvm-cov show-env --sh)"; \
	export KEEL_BIN="$$CARGO_TARGET_DIR/debug/keel"; \
	cargo llvm-cov clean --workspace; \
	$(CARGO_BUILD); \
	if [[ -z "$${APP_TEST_DATABASE_URL:-}" ]]; then \
	  APP_TEST_PG_IMAGE="$$(scripts/pg-image.sh)"; export APP_TEST_PG_IMAGE; fi; \
	cargo nextest run --workspace --locked; \
	mkdir -p $(COVERAGE_DIR); \
	cargo llvm-cov report --lcov --output-path $(COVERAGE_DIR)/lcov.info; \
	cargo llvm-cov report --html --output-dir $(COVERAGE_DIR); \
	cargo llvm-cov report --summary-only

dockerfile-lint: tools ## hadolint and checkov (dockerfile) on the production Dockerfile
	$(VENV)/bin/hadolint Dockerfile
	$(VENV)/bin/checkov --framework dockerfile --file Dockerfile --skip-download --quiet --compact

fmt: ## Format the Rust code
	cargo fmt --all

build: ## Build everything (debug), the keel binary included
	$(CARGO_BUILD)

unit-test: build ## Unit tests of the service crate (no database)
	cargo nextest run --workspace --locked -E 'package(keel)'

scripts-test: ## Operator scripts against stand-ins: db-app-password.sh with a mock AWS CLI
	scripts/db-app-password-test.sh

integration-test: build ## Black-box tests against real PostgreSQL through testcontainers
	if [[ -z "$${APP_TEST_DATABASE_URL:-}" ]]; then \
	  APP_TEST_PG_IMAGE="$$(scripts/pg-image.sh)"; export APP_TEST_PG_IMAGE; fi; \
	cargo nextest run --workspace --locked -E 'package(keel-tests)'

spec-check: tools ## Validate openapi.json against the OpenAPI 3 schema (drift is an integration test)
	$(VENV)/bin/openapi-spec-validator openapi.json

contract-test: tools build ## schemathesis against a live server: all checks, fixed seed, bounded examples
	scripts/with-postgres.sh scripts/contract-test.sh $(KEEL) $(VENV)/bin/schemathesis

docs-browser-test: tools build ## Swagger UI in Chromium: log in with Try it out, Authorize, GET /users/me shows 200
	scripts/with-postgres.sh scripts/docs-browser-test.sh $(KEEL) $(VENV)/bin/python

infra-check: tools ## Terraform fmt, validate and test (mocked AWS provider, offline) for infra/, and checkov
	CHECKOV=$(VENV)/bin/checkov infra/check.sh

sqlx-check: ## Fail when .sqlx/ (offline query data) no longer matches the queries and schema
	scripts/with-postgres.sh scripts/sqlx-prepare.sh --check

sqlx-prepare: ## Regenerate .sqlx/ after changing a query or a migration
	scripts/with-postgres.sh scripts/sqlx-prepare.sh

image: ## Build the production image, tagged IMAGE (default keel:local); works where no registry can be pulled
	scripts/image.sh

image-test: image ## Run IMAGE with PostgreSQL as hardened containers: migrate, register, log in, order, docker stop exits 0
	scripts/image-smoke.sh $(IMAGE) "$$(scripts/pg-image.sh)"

helm-check: tools ## helm lint, golden renders, kubernetes-validate (1.30, 1.33), CRD structure, checkov on the chart
	PATH="$(TOOLS_BIN):$$PATH" KUBERNETES_VALIDATE=$(VENV)/bin/kubernetes-validate \
	  CHECKOV=$(VENV)/bin/checkov TOOLS_BIN=$(TOOLS_BIN) helm/check.sh

helm-golden: tools ## Rewrite the chart's golden renders (helm/golden/) after a chart change; review the diff
	PATH="$(TOOLS_BIN):$$PATH" KUBERNETES_VALIDATE=$(VENV)/bin/kubernetes-validate \
	  CHECKOV=$(VENV)/bin/checkov TOOLS_BIN=$(TOOLS_BIN) helm/check.sh --update

obs-up: ## Start the local observability stack (collector on :4318, Grafana on http://127.0.0.1:3000), detached; see docs/operations.md
	$(OBS_COMPOSE) up -d
	@echo "Export with APP__TELEMETRY__OTLP_ENDPOINT=http://127.0.0.1:4318; Grafana on http://127.0.0.1:3000 (make obs-down removes it)"

obs-down: ## Stop the local observability stack and delete its data
	$(OBS_COMPOSE) down -v

# promtool comes with Debian's prometheus package; installed here when missing and root (CI),
# as .ci/run installs the other system packages.
obs-check: tools ## Offline checks of observability/: compose, promtool rules + unit tests, dashboards, collector pipelines, metric names
	if ! command -v promtool >/dev/null; then \
	  [[ "$$(id -u)" = 0 ]] || { echo "obs-check: promtool is missing: apt-get install prometheus" >&2; exit 1; }; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus >/dev/null \
	    || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus >/dev/null; }; \
	fi
	PYTHON=$(VENV)/bin/python observability/check.sh

remove-example: ## Delete the example domain (catalog, orders, reports) for good; a fork runs it once
	scripts/remove-example.sh

remove-example-test: tools ## Run remove-example on a scratch copy of this tree, then its lint and tests
	scripts/remove-example-test.sh

# Not part of `make test`: performance is measured here, never asserted by timed tests.
bench: tools ## Benchmarks (~10 min): criterion micro-benchmarks, then a release keel serve under wrk next to pgbench on one PostgreSQL; writes bench/results/DATE.json and docs/benchmarks.md (BENCH_PRODUCTS="10000 1000000" adds the large catalog)
	PYTHON=$(VENV)/bin/python scripts/bench.sh

bench-quick: tools ## A 2-minute smoke run of make bench: fewer endpoints, 3 s each, no micro-benchmarks; prints the table, leaves docs/ alone
	BENCH_QUICK=1 PYTHON=$(VENV)/bin/python scripts/bench.sh

openapi: build ## Rewrite the committed openapi.json from the code
	$(KEEL) openapi > openapi.json

db-up: ## Start a long-lived development PostgreSQL on 127.0.0.1:5432 (PG_PORT; matches default.toml)
	image="$$(scripts/pg-image.sh)"; \
	docker run -d --name keel-dev-postgres -p 127.0.0.1:$(PG_PORT):5432 \
	  -e POSTGRES_USER=keel -e POSTGRES_PASSWORD=keel -e POSTGRES_DB=keel "$$image" >/dev/null
	@echo "PostgreSQL on postgres://keel:keel@127.0.0.1:$(PG_PORT)/keel (make db-down removes it)"

db-down: ## Remove the development PostgreSQL and its data
	docker rm -f keel-dev-postgres >/dev/null 2>&1 || true

pg-image: ## Print the PostgreSQL image tests use, building it from Debian packages when none can be pulled
	@scripts/pg-image.sh

tools: $(TOOLS_STAMP) ## Install the pinned Python tools (tools/requirements.txt) into VENV (default .venv)

$(TOOLS_STAMP): tools/requirements.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r tools/requirements.txt
	rm -f $(VENV)/.installed-*
	touch $@
