#!/usr/bin/env bash
# The GPU checks in two halves, for a GPU machine that has no Rust toolchain:
#
#   scripts/gpu-checks.sh build   # here: builds the GPU test and benchmark binaries
#                                 # into gpu-bin/ (ignored by git; carry it over)
#   scripts/gpu-checks.sh run     # there: runs them all, then the PyTorch/JAX
#                                 # baselines, and writes the log to $OUT or gpu-log/
set -euo pipefail
cd "$(dirname "$0")/.."

case "${1:-}" in
build)
    rm -rf gpu-bin && mkdir -p gpu-bin
    executables() {
        cargo "$@" --all-features --message-format=json \
            | python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable"):
        print(m["executable"])'
    }
    cp "$(executables test --release --no-run --test cuda)" gpu-bin/cuda-tests
    cp "$(executables bench --no-run --bench gpu)" gpu-bin/gpu-bench
    cp "$(executables build --release --example cuda_custom_op)" gpu-bin/cuda-custom-op
    cp benches/gpu/w4_baselines.py gpu-bin/
    strip gpu-bin/cuda-tests gpu-bin/gpu-bench gpu-bin/cuda-custom-op
    ls -l gpu-bin
    ;;
run)
    log_dir="${OUT:-gpu-log}"
    mkdir -p "$log_dir"
    export LD_LIBRARY_PATH=/usr/local/nvidia/lib64:/usr/local/cuda/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
    export FLUXION_REQUIRE_GPU=1 PYTHONUNBUFFERED=1
    {
        echo "== $(date -u) $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader)"
        echo "== parity tests"
        gpu-bin/cuda-tests --test-threads=1 2>&1 || echo "PARITY TESTS FAILED"
        echo "== example: a library author's op on the GPU"
        gpu-bin/cuda-custom-op 2>&1 || echo "EXAMPLE FAILED"
        echo "== benchmarks (fluxion)"
        gpu-bin/gpu-bench --bench 2>&1 || echo "BENCHMARKS FAILED"
        echo "== baselines (PyTorch, JAX)"
        python3 gpu-bin/w4_baselines.py 2>&1 || echo "BASELINES FAILED"
    } | tee "$log_dir/gpu-checks.log"
    ;;
*)
    echo "usage: $0 build|run" >&2
    exit 2
    ;;
esac
