# Two commands for a fresh machine: `make demo` and `make test`. Both create .venv, install what
# they need, build the extension in release mode and run.
VENV    ?= .venv
PY      := $(abspath $(VENV))/bin/python
STAMP   := $(VENV)/.deps-installed
PYDEPS  := "maturin>=1.16,<2" "numpy>=1.26" "pytest>=8" "ruff>=0.6"
MATURIN := VIRTUAL_ENV=$(abspath $(VENV)) PATH=$(abspath $(VENV))/bin:$$PATH maturin

.PHONY: demo test develop lint test-rust test-python example gpu-bundle

$(STAMP):
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(PYDEPS)
	touch $@

# Build the extension (release) into the venv.
develop: $(STAMP)
	$(MATURIN) develop --release -q

# The README example on the best available device, with its error against NumPy.
demo: develop
	$(PY) -m pocaflow.demos.readme

lint: $(STAMP)
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -q -- -D warnings
	$(VENV)/bin/ruff check python tests
	$(VENV)/bin/ruff format --check python tests

test-rust:
	cargo test --release -p pocaflow

test-python: develop
	$(PY) -m pytest -q

# Every test: formatting and lints, the Rust suites, then the Python suites.
test: lint test-rust test-python

# The Rust example from the README.
example:
	cargo run --release --example matmul

# Everything the GPU machine needs, built here into .gpu/ (run scripts/gpu-run.sh there).
gpu-bundle: $(STAMP)
	scripts/gpu-bundle.sh
