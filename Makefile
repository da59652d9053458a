# Two commands for a fresh machine: `make demo` and `make test`. Both create .venv, install what
# they need, build the extension in release mode and run.
VENV    ?= .venv
PY      := $(abspath $(VENV))/bin/python
STAMP   := $(VENV)/.deps-installed
PYDEPS  := "maturin>=1.16,<2" "numpy>=1.26" "pytest>=8" "ruff>=0.6" "scikit-learn>=1.3"
# Only for `make bench-cpu`: the plot and NumPy's BLAS thread count.
BENCHDEPS := "matplotlib>=3.7" "threadpoolctl>=3"
MATURIN := VIRTUAL_ENV=$(abspath $(VENV)) PATH=$(abspath $(VENV))/bin:$$PATH maturin

.PHONY: demo test test-arm64 develop lint test-rust test-python example gpu-bundle openblas bench-cpu

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
	cargo clippy --workspace --all-targets -q --features pocaflow/blas -- -D warnings
	$(VENV)/bin/ruff check python tests bench
	$(VENV)/bin/ruff format --check python tests bench

# The system OpenBLAS for the `blas` feature: Debian's libopenblas-dev, installed (as root) only
# where libopenblas.so is missing.
openblas:
	@ldconfig -p | grep -q 'libopenblas\.so ' || { \
	  command -v apt-get >/dev/null || { echo "--features blas needs OpenBLAS (libopenblas.so)" >&2; exit 1; }; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libopenblas-dev; }

# The Rust suites with pocaflow's own GEMM, then again with the CPU matmul on OpenBLAS.
test-rust: openblas
	cargo test --release -p pocaflow
	cargo test --release -p pocaflow --features blas

# The Rust cube example is built first: a Python test compares its frames with the Python demo's.
test-python: develop
	cargo build --release -q -p pocaflow --example cube
	$(PY) -m pytest -q

# Every test: formatting and lints, the Rust suites, then the Python suites.
test: lint test-rust test-python

# The CPU GEMM's suites on ARM64 (the NEON kernels), cross-built with Debian's Rust and run
# under qemu-user: the kernel unit tests, every layout, edge tile and block boundary of
# gemm_cpu, and tensor_matmul (about 6 minutes on 2 cores from a fresh machine). Installs (as
# root) Debian's aarch64 toolchain where it is missing. The runner uses the arm64 libc of
# the multiarch install (`qemu-aarch64` without `-L /usr/aarch64-linux-gnu`: that cross libc
# is an older build than the libc6:arm64 the Rust standard library pulls in, and the mix hangs
# in pthread_create).
ARM64_ENV := RUSTC=/usr/bin/rustc \
  CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc \
  CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER=qemu-aarch64 RUSTFLAGS="-D warnings"
test-arm64:
	@test -x /usr/bin/cargo && command -v qemu-aarch64 >/dev/null && command -v aarch64-linux-gnu-gcc >/dev/null || { \
	  dpkg --add-architecture arm64 && apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    rustc-web cargo-web libstd-rust-web-dev:arm64 gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user; }
	$(ARM64_ENV) /usr/bin/cargo test --release -p pocaflow --no-default-features \
	  --target aarch64-unknown-linux-gnu --target-dir target/arm64 \
	  --lib --test gemm_cpu --test tensor_matmul

# The CPU benchmarks: pocaflow's GEMM against NumPy and matrixmultiply in Rust (about 6
# minutes on 2 cores; bench/results/cpu-<date>.json, .png and .md), then every suite of
# `python -m pocaflow.bench` against NumPy, SciPy and torch where installed (--quick: under
# 3 minutes on 2 cores), and the elementwise suite with pocaflow on one thread (the bars for
# one thread), into bench/results/.
bench-cpu: develop
	$(PY) -m pip install -q $(BENCHDEPS)
	$(PY) bench/cpu_bench.py
	$(PY) -m pocaflow.bench --device cpu --quick --suite all --out bench/results
	POCAFLOW_NUM_THREADS=1 RAYON_NUM_THREADS=1 $(PY) -m pocaflow.bench --device cpu --quick \
	  --suite elementwise --out bench/results --name cpu-$$(date +%F)-elementwise-1thread

# The Rust example from the README.
example:
	cargo run --release --example matmul

# Everything the GPU machine needs, built here into .gpu/ (run scripts/gpu-run.sh there).
gpu-bundle: $(STAMP)
	scripts/gpu-bundle.sh
