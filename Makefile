# One place for every check, used by hand and by CI (.ci/run).
#   make test    installs everything into .venv, builds the extension, runs the Rust and Python tests
#   make lint    formatting, lints, the stub check, mypy --strict over the typed example, actionlint
#   make demo    the demo on the built-in FakeHubSpot
#   make wheel   release wheels (manylinux2014, abi3, stripped) and the sdist, into dist/
#   make test-integrations   the recipes in real Django, FastAPI, Airflow 3, Jupyter, and Dask
#                            with a PostgreSQL sync state (a server of its own, from the
#                            installed PostgreSQL)
#   make bench   the benchmarks, on a release build in bench/.venv
#
# PYTHON picks the interpreter the venv is made from; VENV where it goes. Another Python:
#   make test PYTHON=python3.13 VENV=.venv-3.13
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# pyo3's build script (under cargo test and maturin alike) reads the venv's interpreter, so that
# both build the crate for the same Python and share target/.
export VIRTUAL_ENV := $(abspath $(VENV))
export PYO3_PYTHON := $(abspath $(PY))

.PHONY: test lint demo dev rust-test py-test wheel wheel-check bench bench-quick test-integrations

$(VENV)/.installed: requirements-dev.txt requirements-test.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements-dev.txt
	touch $@

# The extension in the dev profile: incremental, and it shares target/ with cargo test.
dev: $(VENV)/.installed
	$(VENV)/bin/maturin develop -q

rust-test: $(VENV)/.installed
	cargo test -q --workspace

py-test: dev
	$(PY) -m pytest -q

test: rust-test py-test

lint: dev
	cargo fmt --all --check
	cargo clippy -q --workspace --all-targets --all-features -- -D warnings
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m mypy.stubtest --mypy-config-file pyproject.toml --allowlist stubtest-allowlist.txt hubspot_upsert
	$(PY) -m mypy --strict examples/typed_usage.py
	$(VENV)/bin/actionlint .github/workflows/*.yml

demo: dev
	$(VENV)/bin/hubspot-upsert --demo

# The recipes in their real frameworks, in a venv of their own (Airflow 3 pins much of what it
# runs with), on the extension built as a wheel (abi3: any Python from 3.10 takes it).
INTEGRATIONS_PYTHON ?= $(PYTHON)
.venv-integrations/.installed: requirements-integrations.txt
	$(INTEGRATIONS_PYTHON) -m venv .venv-integrations
	.venv-integrations/bin/pip install -q --disable-pip-version-check -r requirements-integrations.txt
	touch $@

test-integrations: $(VENV)/.installed .venv-integrations/.installed
	rm -rf target/integrations-wheel
	$(VENV)/bin/maturin build -q -o target/integrations-wheel
	.venv-integrations/bin/pip install -q --disable-pip-version-check --force-reinstall --no-deps target/integrations-wheel/*.whl
	.venv-integrations/bin/python -m pytest -c integrations/pytest.ini integrations

# Wheels for glibc 2.17 and later (manylinux2014), linked with zig from PyPI. aarch64 is
# cross-compiled when its Rust target is installed (`rustup target add aarch64-unknown-linux-gnu`);
# the build never downloads a toolchain.
ZIG_TARGETS := x86_64-unknown-linux-gnu $(if $(shell rustup target list --installed 2>/dev/null | grep aarch64-unknown-linux-gnu),aarch64-unknown-linux-gnu)
wheel: $(VENV)/.installed
	rm -rf dist
	for target in $(ZIG_TARGETS); do \
		PATH="$(abspath $(VENV))/bin:$$PATH" $(VENV)/bin/maturin build -q --release --strip --zig --compatibility manylinux2014 \
			--target $$target --out dist || exit 1; \
	done
	$(VENV)/bin/maturin sdist --out dist
	@echo "built:"; ls -l dist
	@case "$(ZIG_TARGETS)" in *aarch64*) ;; *) echo "no aarch64 wheel: its Rust target is not installed";; esac

# The x86_64 wheel's platform tag, checked by auditwheel: manylinux_2_17 and nothing newer.
wheel-check: $(VENV)/.installed
	$(VENV)/bin/auditwheel show dist/*x86_64.whl | tee dist/auditwheel.txt
	grep -q 'manylinux_2_17_x86_64' dist/auditwheel.txt

# Benchmarks run on a release build of their own, beside the peers they compare with.
bench/.venv/.installed: bench/requirements.txt Cargo.toml pyproject.toml $(shell find src core python -type f -not -name '*.so' -not -path '*__pycache__*')
	$(PYTHON) -m venv bench/.venv
	MATURIN_PEP517_ARGS="--features bench" bench/.venv/bin/pip install -q --disable-pip-version-check . -r bench/requirements.txt
	touch $@

bench: bench/.venv/.installed
	bench/.venv/bin/python bench/run.py

bench-quick: bench/.venv/.installed
	bench/.venv/bin/python bench/run.py --quick
