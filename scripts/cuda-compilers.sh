#!/usr/bin/env bash
# Installs NVIDIA's CUDA 13.0 compiler pieces from PyPI into a virtual environment
# (NVRTC and ptxas run without a GPU), pinned at 13.0.88 so that pip never mixes in
# other releases, and prints the environment the offline kernel check needs:
#
#   eval "$(scripts/cuda-compilers.sh target/cuda-compilers)"
#   cargo test --features cuda --test cuda_kernels
set -euo pipefail
venv="${1:?usage: $0 <folder for the virtual environment>}"
if [ ! -x "$venv/bin/pip" ]; then
    python3 -m venv "$venv" >&2
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check \
    nvidia-cuda-nvcc==13.0.88 nvidia-cuda-nvrtc==13.0.88 nvidia-nvvm==13.0.88 \
    nvidia-cuda-runtime==13.0.88 nvidia-cuda-crt==13.0.88 >&2
cu13="$(echo "$venv"/lib/python3*/site-packages/nvidia/cu13)"
cu13="$(cd "$cu13" && pwd)"
echo "export LD_LIBRARY_PATH=\"$cu13/lib:\${LD_LIBRARY_PATH:-}\""
echo "export FLUXION_PTXAS=\"$cu13/bin/ptxas\""
echo "export FLUXION_REQUIRE_NVRTC=1"
