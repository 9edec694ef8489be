# One place for every check, used by hand and by CI (.ci/run).
#   make test   installs everything into .venv, builds the extension, runs the Rust and Python tests
#   make lint   formatting, lints, the stub check and mypy --strict over the typed example
#   make demo   the demo on the built-in FakeHubSpot
#   make bench  the benchmarks, on a release build in bench/.venv
VENV ?= .venv
PY := $(VENV)/bin/python
export VIRTUAL_ENV := $(abspath $(VENV))

.PHONY: test lint demo dev rust-test py-test bench bench-quick

$(VENV)/.installed: requirements-dev.txt
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements-dev.txt
	touch $@

# The extension in the dev profile: incremental, and it shares target/ with cargo test.
dev: $(VENV)/.installed
	$(VENV)/bin/maturin develop -q

rust-test:
	cargo test -q

py-test: dev
	$(PY) -m pytest -q

test: rust-test py-test

lint: dev
	cargo fmt --check
	cargo clippy -q --all-targets -- -D warnings
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m mypy.stubtest hubspot_upsert
	$(PY) -m mypy --strict examples/typed_usage.py

demo: dev
	$(VENV)/bin/hubspot-upsert --demo

# Benchmarks run on a release build of their own, beside the peers they compare with.
bench/.venv/.installed: bench/requirements.txt Cargo.toml pyproject.toml $(shell find src python -type f -not -name '*.so' -not -path '*__pycache__*')
	python3 -m venv bench/.venv
	bench/.venv/bin/pip install -q --disable-pip-version-check . -r bench/requirements.txt
	touch $@

bench: bench/.venv/.installed
	bench/.venv/bin/python bench/run.py

bench-quick: bench/.venv/.installed
	bench/.venv/bin/python bench/run.py --quick
