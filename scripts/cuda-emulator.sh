#!/usr/bin/env bash
# Builds the host stand-in for libcuda, libnvrtc and libcublas (cuda-emulator/),
# links it under those names in a folder of its own and prints the environment that
# makes cudarc load it, so the GPU tests run without a GPU:
#
#   eval "$(scripts/cuda-emulator.sh)"
#   FLUXION_REQUIRE_GPU=1 cargo test --features cuda --test cuda
#
# Not with the offline kernel check's environment (scripts/cuda-compilers.sh): that
# one needs the real NVRTC first on LD_LIBRARY_PATH.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p fluxion-cuda-emulator >&2
target="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
folder="$target/cuda-emulator"
mkdir -p "$folder/lib" "$folder/kernels"
for name in libcuda.so libnvrtc.so libcublas.so; do
    ln -sf "$target/release/libfluxion_cuda_emulator.so" "$folder/lib/$name"
done
echo "export LD_LIBRARY_PATH=\"$folder/lib:\${LD_LIBRARY_PATH:-}\""
echo "export FLUXION_CUDA_EMULATOR_CACHE=\"$folder/kernels\""
