# eksight — every target installs what it needs (Python venv, npm packages) on first use, then works offline.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
CONFIG ?= eksight.config.json
CDK := npx --no-install cdk
CDK_FLAGS := --no-notices --no-version-reporting
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: install lock browser test unit infra e2e lint fuzz synth demo schema docs bench clean

install: $(VENV)/.installed node_modules/.installed build/lambda-deps/.installed

## the deploy closure at its locked versions (the lock without its hashes: pip requires hashes for everything once a
## constraints file has any, and the dev tools are not locked)
$(VENV)/.installed: requirements.txt requirements-dev.txt requirements-deploy.lock pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "eksight needs Python 3.11+"'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	@mkdir -p build && grep -E '^[A-Za-z0-9_.-]+==' requirements-deploy.lock | sed -E 's/ *\\$$//' > build/deploy-constraints.txt
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt -c build/deploy-constraints.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	@touch $@

## Lambda dependencies for python3.12/x86_64, from binary wheels only (no Docker); copied into each function's
## asset at synth (stacks/constructs/lambda_package.py). manylinux_2_28: numpy 2.4 has no manylinux2014 wheels.
build/lambda-deps/.installed: requirements-lambda.txt $(VENV)/.installed
	rm -rf build/lambda-deps
	$(PY) -m pip install --quiet --disable-pip-version-check --no-compile --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 \
		--implementation cp --python-version 3.12 --only-binary=:all: --target build/lambda-deps -r requirements-lambda.txt
	@touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

## requirements-{deploy,lambda}.lock: what deploy.sh installs, the full closure at this venv's versions (what the
## tests ran against), with the sha256 of every file PyPI has for each release (pip --require-hashes). Needs PyPI.
LOCK_FLAGS := --quiet --no-config --generate-hashes --allow-unsafe --strip-extras --no-emit-index-url --no-emit-find-links
lock: $(VENV)/.installed
	$(PY) -m pip install --quiet --disable-pip-version-check pip-tools==7.7.0
	@mkdir -p build && $(PY) -m pip freeze --exclude-editable > build/venv-versions.txt
	for name in deploy lambda; do \
		env -u PIP_FIND_LINKS PIP_CONFIG_FILE=/dev/null CUSTOM_COMPILE_COMMAND="make lock" $(VENV)/bin/pip-compile \
			$(LOCK_FLAGS) -c build/venv-versions.txt -o requirements-$$name.lock requirements-$$name.txt || exit 1; \
	done

## Debian's Chromium and ChromeDriver (the wizard's browser test) and shellcheck (deploy.sh); idempotent. Needs root
## or password-less sudo, and apt-get; without them it says how to enable those tests, which then skip (fail in CI).
APT_INSTALL := DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium chromium-driver shellcheck
browser:
	@command -v chromium >/dev/null && command -v shellcheck >/dev/null || { \
		if [ "$$(id -u)" = 0 ]; then SUDO=; elif sudo -n true 2>/dev/null; then SUDO=sudo; else SUDO=none; fi; \
		if [ "$$SUDO" = none ] || ! command -v apt-get >/dev/null; then \
			echo "make browser: skipped (needs root or password-less sudo, and apt-get): the browser and shellcheck tests will be skipped; to enable them run: sudo apt-get install chromium chromium-driver shellcheck"; \
		else \
			$$SUDO env $(APT_INSTALL) || { $$SUDO apt-get update -qq && $$SUDO env $(APT_INSTALL); }; \
		fi; }

## the whole suite: lint (style, layers, types), then every test
test: install browser lint
	$(PY) -m pytest -n 2 --dist loadfile

## the test ladder: pure code and tooling (seconds) → synthesized stacks → the pipeline on moto server + DynamoDB Local
## (with faults injected at the wire: tests/faults)
unit: install
	$(PY) -m pytest -n 2 --dist loadfile tests/unit tests/detection tests/setup
infra: install
	$(PY) -m pytest -n 2 --dist loadfile tests/infrastructure
e2e: install
	$(PY) -m pytest -n 2 --dist loadfile tests/e2e tests/emulator tests/lambdas tests/stores tests/faults

## minutes of hostile input (nesting, size, encodings) through the decoder and event parser, and through the detector
## handler's per-object step (process_object) around privileged pods; make test runs a smoke
## version of the same properties
fuzz: install
	EKSIGHT_FUZZ_EXAMPLES=20000 $(PY) -m pytest -q -n 2 tests/unit/test_decode_fuzz.py tests/unit/test_object_fuzz.py

## style (ruff), formatting (ruff format), the layer contracts (import-linter, pyproject.toml) and types (mypy)
lint: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(VENV)/bin/lint-imports
	$(PY) -m mypy

## make synth [CONFIG=path]: synthesize that config into cdk.out/ (offline, no credentials)
synth: install
	$(CDK) synth $(CDK_FLAGS) -q -c config=$(CONFIG)
	@$(PY) -m eksight.tools.plan cdk.out $(CONFIG)

## the whole pipeline on an embedded AWS (moto server + DynamoDB Local) with a simulated cluster under attack
demo: install
	$(PY) -m eksight.tools.emulator.demo

## regenerate the published JSON Schema and docs/configuration.md from the config models
schema: install
	$(PY) -c 'import json; from eksight.config import json_schema; print(json.dumps(json_schema(), indent=2))' > schema/eksight.config.schema.json
	$(PY) -c 'from eksight.config import markdown_reference; print(markdown_reference(), end="")' > docs/configuration.md

## regenerate docs/detections.md from the rules
docs: install
	$(PY) -c 'from eksight.core.rules.coverage import markdown; print(markdown(), end="")' > docs/detections.md
	$(PY) -m stacks.nag_report --write docs/security.md

## throughput vs. raw parsing; DynamoDB capacity per 1,000 events at ≥ 500 events/s; a 100 MB object's memory and
## duration and the handler's cold start
bench: install
	$(PY) -m bench --json test-artifacts/bench.json

clean:
	rm -rf cdk.out .pytest_cache .ruff_cache
