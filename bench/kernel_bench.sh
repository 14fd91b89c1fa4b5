#!/usr/bin/env bash
# One command on the GPU machine: xring's kernels and PyTorch SDPA (flash, cuDNN, efficient
# forced in turn) on the same shapes, same timing method, then the comparison table.
#   bench/kernel_bench.sh [BUILD_DIR] [OUT_DIR] [--quick]
set -euo pipefail
build=${1:-build/default}
out=${2:-.}
quick=${3:-}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out"
"$build/bench/bench_kernels" $quick | tee "$out/xring.jsonl"
python3 "$here/sdpa_peer.py" $quick | tee "$out/sdpa.jsonl"
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,clocks.max.mem --format=csv,noheader \
  > "$out/device.txt" || true
python3 "$here/compare_kernels.py" "$out/xring.jsonl" "$out/sdpa.jsonl" | tee "$out/table.md"
