#!/usr/bin/env bash
# Everything the GPU issues need measured, in one command on the GPU machine. Build here first:
#   cmake --preset gpu && cmake --build --preset gpu
# then run on the device (the `run` tool) with carry: build-gpu/tests/xring_kernel_tests,
# build-gpu/bench/bench_kernels, build-gpu/xring:
#   scripts/gpu-check.sh            # results under $OUT (or ./gpu-out)
set -uo pipefail
out=${OUT:-gpu-out}
mkdir -p "$out"
nvidia-smi > "$out/nvidia-smi.txt" 2>&1
tests=build-gpu/tests/xring_kernel_tests
echo "== kernel tests"
"$tests" --gtest_output=json:"$out/kernel_tests.json" 2>&1 | tee "$out/kernel_tests.txt" | tail -5
if command -v compute-sanitizer > /dev/null; then
  for tool in memcheck racecheck; do
    echo "== compute-sanitizer $tool"
    compute-sanitizer --tool "$tool" --error-exitcode 9 "$tests" > "$out/$tool.txt" 2>&1
    echo "exit $? (0 = clean)"; tail -3 "$out/$tool.txt"
  done
fi
echo "== kernel benchmark"
bench/kernel_bench.sh build-gpu "$out" ${QUICK:+--quick}
