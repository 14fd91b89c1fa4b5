#!/usr/bin/env bash
# Everything the GPU issues need measured, in one command on the GPU machine. Build here first:
#   cmake --preset gpu && cmake --build --preset gpu
# then run on the device (the `run` tool) with carry: build-gpu/tests/xring_kernel_tests,
# build-gpu/tests/xring_executor_tests, build-gpu/bench/bench_kernels, build-gpu/xring:
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
echo "== cuda backend tests (emulated ranks against the reference)"
backend=build-gpu/tests/xring_executor_tests
"$backend" --gtest_filter='CudaBackend*:EmulatedRanks*:RingSchedule*' \
  --gtest_output=json:"$out/backend_tests.json" 2>&1 | tee "$out/backend_tests.txt" | tail -5
if command -v compute-sanitizer > /dev/null; then
  compute-sanitizer --tool memcheck --error-exitcode 9 "$backend" --gtest_filter='CudaBackend*' \
    > "$out/backend_memcheck.txt" 2>&1
  echo "backend memcheck exit $? (0 = clean)"
fi
echo "== ring overhead: llama-3.2-11b-vision cross-attention, 8 emulated ranks vs one rank"
xring=build-gpu/xring
for strategy in query_ring kv_ring; do
  "$xring" plan --model llama-3.2-11b-vision --cluster h100-sxm-8 --strategy "$strategy" \
    --ranks 8 --set workload.frames=16 --set workload.text_tokens=2048 \
    -o "$out/plan-$strategy.json" > /dev/null &&
    "$xring" run "$out/plan-$strategy.json" --backend cuda --repeat 5 \
      --json "$out/run-$strategy.json" 2>&1 | tee "$out/run-$strategy.txt" | grep -E "layer|verified"
done
echo "== nccl backend, one rank (NCCL from the pip package nvidia-nccl)"
nccl_dir=$(python3 -c "import nvidia.nccl, os; print(os.path.dirname(nvidia.nccl.__file__))" 2> /dev/null)
[ -n "$nccl_dir" ] && export LD_LIBRARY_PATH="$nccl_dir/lib:${LD_LIBRARY_PATH:-}"
"$xring" plan --model tiny --strategy single --ranks 1 -o "$out/plan-single.json" > /dev/null &&
  "$xring" run "$out/plan-single.json" --backend nccl --rank 0 --world 1 \
    --json "$out/run-nccl.json" 2>&1 | tee "$out/run-nccl.txt" | tail -3
XRING_BINARY="$PWD/$xring" XRING_TEST_DATA="$PWD/tests/data" build-gpu/tests/xring_cli_tests \
  --gtest_filter='Cli.CudaBackend*:Cli.NcclBackend*' 2>&1 | tail -3
echo "== kernel benchmark"
bench/kernel_bench.sh build-gpu "$out" ${QUICK:+--quick}
