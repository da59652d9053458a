#!/usr/bin/env bash
# Builds, on this machine, everything the GPU machine runs (it has no Rust toolchain): the abi3
# wheel, the release test binaries and the Rust example, into the git-ignored folder .gpu/.
# Then run scripts/gpu-run.sh there with .gpu carried along.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
rm -rf .gpu && mkdir -p .gpu/bin .gpu/wheels
[ -x "$VENV/bin/maturin" ] || make "$VENV/.deps-installed"
"$VENV/bin/maturin" build --release -q --out .gpu/wheels
# Release test binaries of the core crate (cargo prints their paths as JSON).
cargo test --release -p pocaflow --no-run --message-format=json 2>/dev/null |
  "$VENV/bin/python" -c '
import json, shutil, sys
for line in sys.stdin:
    msg = json.loads(line)
    if msg.get("reason") == "compiler-artifact" and msg.get("executable") and msg["profile"]["test"]:
        name = msg["target"]["name"]
        shutil.copy(msg["executable"], f".gpu/bin/test-{name}")
        print(f"bundled test-{name}")
'
cargo build --release -q -p pocaflow --example matmul --example cuda_overhead --example cuda_transfer
cp target/release/examples/matmul .gpu/bin/example-matmul
cp target/release/examples/cuda_overhead .gpu/bin/example-cuda_overhead
cp target/release/examples/cuda_transfer .gpu/bin/example-cuda_transfer
# Symbols off: the device copy of the work tree is limited to 64 MiB.
strip .gpu/bin/*
git rev-parse --short HEAD > .gpu/COMMIT
du -sh .gpu
