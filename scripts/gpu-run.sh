#!/usr/bin/env bash
# Runs on the GPU machine, from the repository root, with the .gpu/ bundle present (see
# gpu-bundle.sh). Steps (default: all): rust pytest demo mlp benchquick bench sanitizer.
#   scripts/gpu-run.sh                 # everything (and: pipcuda, on request)
#   scripts/gpu-run.sh pytest bench    # a subset
# Logs and results go to $OUT (or /tmp/pocaflow-gpu); a summary table is printed last.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/pocaflow-gpu}
mkdir -p "$OUT"
export POCAFLOW_REQUIRE_CUDA=1 PYTHONUNBUFFERED=1
STEPS=${*:-rust pytest demo mlp benchquick bench sanitizer}
SITE=/tmp/pocaflow-site
python3 -m pip install -q --no-index --no-deps --upgrade --target "$SITE" .gpu/wheels/*.whl || exit 1
export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
declare -a SUMMARY
run() { # name, command...
  local name=$1; shift
  local start=$SECONDS
  echo "=== $name: $*"
  "$@" > "$OUT/$name.log" 2>&1
  local rc=$?
  tail -n 25 "$OUT/$name.log"
  SUMMARY+=("$(printf '%-22s %-5s %4ds' "$name" "$([ $rc -eq 0 ] && echo ok || echo FAIL)" $((SECONDS - start)))")
  return $rc
}
echo "commit $(cat .gpu/COMMIT 2>/dev/null) on $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader)"
for step in $STEPS; do
  case $step in
    rust)
      for t in .gpu/bin/test-*; do run "rust-$(basename "$t")" "$t" --test-threads=1; done
      run rust-example .gpu/bin/example-matmul ;;
    pytest) run pytest python3 -m pytest -q -p no:cacheprovider tests/python ;;
    demo) run demo python3 -m pocaflow.demos.readme ;;
    mlp) run mlp python3 -m pocaflow.demos.mlp --device cuda ;;
    # python -m pocaflow.bench: every suite against torch and CuPy, with the bars of the earlier
    # issues; the JSON, Markdown tables and PNG plots go to $OUT/bench. benchquick is the
    # issue's time bar (under 2 minutes on one H200).
    benchquick)
      run bench-quick python3 -m pocaflow.bench --device cuda --quick --suite all \
        --out "$OUT/bench" --name gpu-bench-quick --progress plain ;;
    bench)
      run bench python3 -m pocaflow.bench --device cuda --suite all \
        --out "$OUT/bench" --name gpu-bench --progress plain ;;
    sanitizer)
      # Memory errors, not speed: left out are the tests that assert timings (every kernel runs
      # many times slower under the sanitizer) and the ones that provoke an out-of-memory error
      # on purpose (memcheck reports the failing cuMemAlloc); all of them ran above.
      run memcheck-rust compute-sanitizer --tool memcheck --error-exitcode 1 \
        .gpu/bin/test-cuda --test-threads=1 --skip enqueueing_does_not_wait --skip out_of_memory
      run memcheck-elementwise compute-sanitizer --tool memcheck --error-exitcode 1 \
        .gpu/bin/test-elementwise --test-threads=1
      run memcheck-nn compute-sanitizer --tool memcheck --error-exitcode 1 \
        .gpu/bin/test-nn --test-threads=1
      run memcheck-pytest compute-sanitizer --tool memcheck --error-exitcode 1 \
        python3 -m pytest -q -p no:cacheprovider tests/python -m cuda \
        -k "not returns_before and not event_timing and not gil_is_released and not out_of_memory" ;;
    pipcuda)
      # CUDA from pip wheels only: hide the system toolkit's libraries in a private mount
      # namespace (libcuda, the driver, stays visible), then use pocaflow.
      run pip-cuda unshare -m --propagation private sh -c \
        'mount -t tmpfs none /usr/local/cuda/targets/x86_64-linux/lib && python3 scripts/check_pip_cuda.py' ;;
    *) echo "unknown step $step" ;;
  esac
done
echo
echo "step                   rc    time"
printf '%s\n' "${SUMMARY[@]}"
