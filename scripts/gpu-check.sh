#!/usr/bin/env bash
# The GPU check of issue 21: everything the GPU machine must measure, in one command that fits
# its window (15 minutes of device time, 8 files back, the last 12,000 characters of output).
set -euo pipefail

usage() {
  cat << 'EOF'
Usage: scripts/gpu-check.sh [--dry-run] [--build DIR]

Runs, in priority order, each stage under `timeout` with its budget (seconds, whole script at
most 450 s of stages, under 8 minutes with the preflight):
  1 kernel_tests     70  xring_kernel_tests (every kernel against its CPU reference)
  2 backend_tests    60  xring_executor_tests CudaBackend*:EmulatedRanks*:RingSchedule*,
                         xring_cli_tests Cli.CudaBackend*
  3 ring_overhead    90  llama-3.2-11b-vision cross-attention, 8 emulated ranks, query_ring
                         and kv_ring, `xring run --backend cuda --repeat 5`
  4 nccl_one_rank    30  `xring run --backend nccl` with one rank, xring_cli_tests Cli.NcclBackend*
                         (libnccl.so.2 located in python's site-packages: nvidia-nccl-cu13)
  5 kernel_bench     75  bench/kernel_bench.sh --quick: xring against PyTorch SDPA
  6 profile_validate 70  xring profile --backend cuda --quick, then validate --backend cuda --quick
  7 sanitizers       55  compute-sanitizer memcheck and racecheck on KernelsGpu.Forward*:Backward*
A stage fails when its command fails, times out, or any GPU test reports SKIPPED (a GPU test
skips only when no device is usable: a driver/runtime mismatch must not look green).

Output: $OUT (default ./gpu-out) receives exactly two files, rewritten after every stage so a
stage that hangs loses nothing: gpu-check.tar.gz (every log, JSON and table) and summary.md
(under 4,000 characters, also printed last: tests, errors, ring overhead, SDPA ratio, decode
against copy GB/s, validate errors). Exit 0 when every stage passed, else 1.

Carried to the GPU machine (build them here: cmake --preset gpu && cmake --build --preset gpu):
  build-gpu/xring  build-gpu/tests/xring_kernel_tests  build-gpu/tests/xring_executor_tests
  build-gpu/tests/xring_cli_tests  build-gpu/bench/bench_kernels

--dry-run (no GPU needed; what the ctest gpu_check_dry_run runs): needs the carried binaries in
DIR and python3. It checks that every carried binary exists, is executable and finds its shared
libraries; that tree + carried binaries stay under 64 MiB; runs each stage in its no-GPU form
(test binaries list their filtered tests and must match some; plans are made for real; `xring
run/profile/validate --backend cuda|nccl` must exit 3 saying why, or 0 where a GPU exists; the
bench's python compiles; NCCL is searched for and reported); then checks that $OUT holds at most
3 files of at most 16 MiB each and that summary.md is under 4,000 characters. Exit 0 when all
holds, 1 when anything fails, 77 (skip) when DIR does not exist or lacks a carried binary.

--build DIR  the build folder whose binaries run (default build-gpu)
EOF
}

mode=run
build="build-gpu"
while [ $# -gt 0 ]; do
  case $1 in
    --dry-run) mode=dry ;;
    --build)
      [ $# -ge 2 ] || { echo "gpu-check: --build needs a folder" >&2; exit 2; }
      build=$2
      shift
      ;;
    -h | --help) usage; exit 0 ;;
    *) echo "gpu-check: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
  shift
done

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
build=$(cd "$build" 2> /dev/null && pwd) || {
  echo "gpu-check: skipped: build folder '$build' does not exist (cmake --preset gpu && cmake --build --preset gpu)"
  exit 77
}
out=${OUT:-$root/gpu-out}
mkdir -p "$out"
out=$(cd "$out" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/gpu-check.XXXXXX")
trap 'rm -rf "$work"' EXIT

readonly total_budget_s=450
readonly max_travel_bytes=$((64 * 1024 * 1024)) max_out_file_bytes=$((16 * 1024 * 1024))
readonly max_out_files=3 max_summary_chars=4000
readonly started_s=$SECONDS
carried=(xring tests/xring_kernel_tests tests/xring_executor_tests tests/xring_cli_tests
  bench/bench_kernels)
xring=$build/xring
export mode build root work xring
export XRING_BINARY=$xring XRING_TEST_DATA=$root/tests/data

# ---- helpers the stages use (exported: each stage runs in its own `timeout bash`) ----

# Where the stage explains itself: one line per fact, read by the summary. `stage` and
# `stage_budget` come from run_stage's environment.
# shellcheck disable=SC2154
note() { echo "$*" >> "$work/$stage.note"; }

# gtest BINARY NAME FILTER: runs a GoogleTest binary (JSON into $work/NAME.json); fails when a
# test fails or any test is skipped. Dry run: the filter must match at least one test.
gtest() {
  local binary=$1 name=$2 filter=${3:-*} rc=0
  if [ "$mode" = dry ]; then
    local listed
    listed=$("$binary" --gtest_list_tests --gtest_filter="$filter" | grep -c '^  ' || true)
    note "$name: $listed tests match '$filter' (listed, not run)"
    [ "$listed" -gt 0 ] || { note "$name: FAIL: the filter matches no test"; return 1; }
    return 0
  fi
  "$binary" --gtest_filter="$filter" --gtest_output=json:"$work/$name.json" \
    > "$work/$name.txt" 2>&1 || rc=$?
  if grep -q '^\[  SKIPPED \]' "$work/$name.txt"; then
    note "$name: FAIL: GPU tests skipped ($(grep -m1 -A1 'Skipped' "$work/$name.txt" | tail -1 | cut -c1-160))"
    return 1
  fi
  [ "$rc" -eq 0 ] || { note "$name: FAIL: exit $rc"; return 1; }
}

# expect_unavailable LOG COMMAND...: dry run of a GPU command: exit 3 naming the backend, or 0.
expect_unavailable() {
  local log=$1 rc=0
  shift
  "$@" > "$log" 2>&1 || rc=$?
  if [ "$rc" -eq 3 ] && grep -q -- '--backend \(cuda\|nccl\)' "$log"; then
    note "$(basename "$log" .txt): exit 3 as expected: $(grep -m1 -- '--backend' "$log" | cut -c1-160)"
  elif [ "$rc" -eq 0 ]; then
    note "$(basename "$log" .txt): ran (a GPU is here)"
  else
    note "$(basename "$log" .txt): FAIL: exit $rc: $(tail -1 "$log" | cut -c1-200)"
    return 1
  fi
}

# The folder holding libnccl.so.2 from the pip package (nvidia.nccl is a namespace package, so
# its __file__ is None: search its __path__ and every site-packages), else ldconfig's.
find_nccl_dir() {
  python3 - << 'EOF' 2> /dev/null || ldconfig -p 2> /dev/null | awk '/libnccl\.so\.2 /{print $NF; exit}' | xargs -r dirname
import glob, os, site, sys
roots = []
try:
    import nvidia.nccl as package
    roots += list(getattr(package, "__path__", []))
    if getattr(package, "__file__", None):
        roots.append(os.path.dirname(package.__file__))
except ImportError:
    pass
for packages in site.getsitepackages() + [site.getusersitepackages()] + sys.path:
    roots.append(os.path.join(packages, "nvidia", "nccl"))
for r in roots:
    for lib in glob.glob(os.path.join(r, "lib", "libnccl.so*")) + glob.glob(os.path.join(r, "libnccl.so*")):
        print(os.path.dirname(lib))
        sys.exit(0)
sys.exit(1)
EOF
}
export -f note gtest expect_unavailable find_nccl_dir

# ---- the stages, in priority order ----

stage_kernel_tests() { gtest "$build/tests/xring_kernel_tests" kernel_tests '*'; }

stage_backend_tests() {
  local rc=0
  gtest "$build/tests/xring_executor_tests" backend_tests \
    'CudaBackend*:EmulatedRanks*:RingSchedule*' || rc=1
  gtest "$build/tests/xring_cli_tests" cli_cuda_tests 'Cli.CudaBackend*' || rc=1
  return $rc
}

stage_ring_overhead() {
  local rc=0 ring
  for ring in query_ring kv_ring; do
    "$xring" plan --model llama-3.2-11b-vision --cluster h100-sxm-8 --strategy "$ring" \
      --ranks 8 --set workload.frames=16 --set workload.text_tokens=2048 \
      -o "$work/plan-$ring.json" > "$work/plan-$ring.txt" 2>&1
    if [ "$mode" = dry ]; then
      expect_unavailable "$work/run-$ring.txt" "$xring" run "$work/plan-$ring.json" \
        --backend cuda --repeat 5 || rc=1
    else
      # Half the stage each, so a ring that hangs leaves the other its time.
      # shellcheck disable=SC2154
      timeout -k 2 $((stage_budget / 2 - 3)) "$xring" run "$work/plan-$ring.json" --backend cuda \
        --repeat 5 --json "$work/run-$ring.json" > "$work/run-$ring.txt" 2>&1 ||
        { note "run-$ring: FAIL: exit $?: $(tail -1 "$work/run-$ring.txt" | cut -c1-200)"; rc=1; }
    fi
  done
  return $rc
}

stage_nccl_one_rank() {
  local rc=0 dir
  dir=$(find_nccl_dir || true)
  if [ -n "$dir" ]; then
    note "libnccl: $dir"
    export LD_LIBRARY_PATH="$dir:${LD_LIBRARY_PATH:-}"
  elif [ "$mode" = dry ]; then
    note "libnccl: not on this machine (expected there: pip package nvidia-nccl-cu13)"
  else
    note "libnccl: FAIL: libnccl.so.2 not found in site-packages nor by ldconfig"
    return 1
  fi
  "$xring" plan --model tiny --strategy single --ranks 1 -o "$work/plan-single.json" \
    > /dev/null 2>&1
  if [ "$mode" = dry ]; then
    expect_unavailable "$work/run-nccl.txt" "$xring" run "$work/plan-single.json" \
      --backend nccl --rank 0 --world 1 || rc=1
  else
    "$xring" run "$work/plan-single.json" --backend nccl --rank 0 --world 1 \
      --json "$work/run-nccl.json" > "$work/run-nccl.txt" 2>&1 ||
      { note "run-nccl: FAIL: $(tail -1 "$work/run-nccl.txt" | cut -c1-200)"; rc=1; }
  fi
  gtest "$build/tests/xring_cli_tests" cli_nccl_tests 'Cli.NcclBackend*' || rc=1
  return $rc
}

stage_kernel_bench() {
  if [ "$mode" = dry ]; then
    python3 -m py_compile "$root/bench/sdpa_peer.py" "$root/bench/compare_kernels.py"
    note "bench python compiles; torch here: $(python3 -c 'import torch; print(torch.__version__)' 2> /dev/null || echo none)"
    return 0
  fi
  "$root/bench/kernel_bench.sh" "$build" "$work/bench" --quick > "$work/kernel_bench.txt" 2>&1 ||
    { note "FAIL: exit $?: $(tail -1 "$work/kernel_bench.txt" | cut -c1-200)"; return 1; }
}

stage_profile_validate() {
  if [ "$mode" = dry ]; then
    local rc=0
    expect_unavailable "$work/profile.txt" "$xring" profile --backend cuda --quick \
      -o "$work/profile.json" || rc=1
    # Any cuda-backend profile parses; the synthetic one stands in for the one measured there.
    expect_unavailable "$work/validate.txt" "$xring" validate --backend cuda --quick \
      --device-profile "$root/tests/data/devices/synthetic-cuda.json" || rc=1
    return $rc
  fi
  "$xring" profile --backend cuda --quick -o "$work/profile.json" > "$work/profile.txt" 2>&1 ||
    { note "profile: FAIL: exit $?: $(tail -1 "$work/profile.txt" | cut -c1-200)"; return 1; }
  "$xring" validate --backend cuda --quick --device-profile "$work/profile.json" \
    --json "$work/validate.json" > "$work/validate.txt" 2>&1 ||
    { note "validate: FAIL: exit $?: $(tail -1 "$work/validate.txt" | cut -c1-200)"; return 1; }
}

stage_sanitizers() {
  local filter='KernelsGpu.Forward*:KernelsGpu.Backward*' rc=0 tool
  local tests=$build/tests/xring_kernel_tests
  if [ "$mode" = dry ]; then
    note "compute-sanitizer here: $(command -v compute-sanitizer || echo none)"
    gtest "$tests" sanitizer_filter "$filter"
    return
  fi
  command -v compute-sanitizer > /dev/null || { note "FAIL: no compute-sanitizer"; return 1; }
  for tool in memcheck racecheck; do
    compute-sanitizer --tool "$tool" --error-exitcode 9 "$tests" --gtest_filter="$filter" \
      > "$work/$tool.txt" 2>&1 || { note "$tool: FAIL: exit $?"; rc=1; }
    note "$tool: $(grep -m1 'ERROR SUMMARY' "$work/$tool.txt" || echo 'no ERROR SUMMARY line')"
  done
  return $rc
}
export -f stage_kernel_tests stage_backend_tests stage_ring_overhead stage_nccl_one_rank \
  stage_kernel_bench stage_profile_validate stage_sanitizers

# ---- running, recording, publishing ----

# Writes summary.md and the archive into $OUT (each by rename, so a kill leaves whole files).
publish() {
  python3 "$root/scripts/gpu_check_summary.py" "$work" "$mode" > "$work/summary.md.new" \
    2> "$work/summary-errors.txt" || cp "$work/stages.tsv" "$work/summary.md.new"
  mv "$work/summary.md.new" "$work/summary.md"
  cp "$work/summary.md" "$out/summary.md.new" && mv "$out/summary.md.new" "$out/summary.md"
  tar -czf "$out/gpu-check.tar.gz.new" -C "$work" . && mv "$out/gpu-check.tar.gz.new" "$out/gpu-check.tar.gz"
}

# run_stage NAME BUDGET_S: the stage under `timeout` (its budget, cut to what the script has
# left), its status into stages.tsv, then publish.
missing=()
run_stage() {
  local name=$1 budget=$2 rc=0 t0=$SECONDS status needs
  local left=$((total_budget_s - (SECONDS - started_s)))
  [ "$budget" -le "$left" ] || budget=$left
  for needs in "${@:3}"; do
    if [[ " ${missing[*]} " == *" $needs "* ]]; then
      printf '%s\tMISSING\t0\t%s\t%s\n' "$name" "$2" "$needs not carried" >> "$work/stages.tsv"
      publish
      return
    fi
  done
  if [ "$budget" -lt 5 ]; then
    printf '%s\tNOT RUN\t0\t%s\tno time left\n' "$name" "$2" >> "$work/stages.tsv"
    publish
    return
  fi
  echo "== $name (budget ${budget} s)"
  stage=$name stage_budget=$budget timeout -k 5 "$budget" bash -c "set -euo pipefail; stage_$name" \
    > "$work/$name.log" 2>&1 || rc=$?
  case $rc in
    0) status=PASS ;;
    124 | 137) status=TIMEOUT ;;
    *) status=FAIL ;;
  esac
  printf '%s\t%s\t%s\t%s\t%s\n' "$name" "$status" $((SECONDS - t0)) "$2" "exit $rc" \
    >> "$work/stages.tsv"
  tail -3 "$work/$name.log" | cut -c1-200
  publish
}

# Preflight: the machine, the carried binaries (present, executable, libraries found).
{
  echo "date: $(date -u +%Y-%m-%dT%H:%MZ)  mode: $mode  build: $build"
  if command -v nvidia-smi > /dev/null; then
    echo "gpu: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | head -1)"
  else
    echo "gpu: none (no nvidia-smi)"
  fi
  echo "nvcc: $(nvcc --version 2> /dev/null | tail -1 || echo none)"
  echo "torch: $(python3 -c 'import torch; print(torch.__version__, torch.version.cuda)' 2> /dev/null || echo none)"
} > "$work/preflight.txt"
: > "$work/stages.tsv"
for b in "${carried[@]}"; do
  if [ ! -x "$build/$b" ]; then
    missing+=("$b")
    echo "carried: MISSING $build/$b" >> "$work/preflight.txt"
  elif ldd "$build/$b" 2> /dev/null | grep -q 'not found'; then
    echo "carried: FAIL $b: $(ldd "$build/$b" | grep 'not found' | tr -s ' \t' ' ' | head -3)" \
      >> "$work/preflight.txt"
  else
    echo "carried: ok $b ($(stat -c %s "$build/$b") bytes)" >> "$work/preflight.txt"
  fi
done
if [ "$mode" = dry ]; then
  # What travels: tracked and untracked-not-ignored files, shared/, and the carried binaries.
  tree_bytes=$(git ls-files -z -co --exclude-standard | xargs -0 stat -c %s 2> /dev/null |
    awk '{s += $1} END {print s + 0}')
  shared_bytes=0
  [ -d shared ] && shared_bytes=$(du -sb shared | cut -f1)
  carried_bytes=0
  for b in "${carried[@]}"; do
    [ -f "$build/$b" ] && carried_bytes=$((carried_bytes + $(stat -c %s "$build/$b")))
  done
  travel=$((tree_bytes + shared_bytes + carried_bytes))
  verdict=ok
  [ "$travel" -lt "$max_travel_bytes" ] || verdict=FAIL
  echo "travel: $verdict $((travel / 1048576)) MiB (tree $((tree_bytes / 1048576)), carried $((carried_bytes / 1048576)); limit 64)" \
    >> "$work/preflight.txt"
fi
cat "$work/preflight.txt"
publish

run_stage kernel_tests 70 tests/xring_kernel_tests
run_stage backend_tests 60 tests/xring_executor_tests tests/xring_cli_tests xring
run_stage ring_overhead 90 xring
run_stage nccl_one_rank 30 xring tests/xring_cli_tests
run_stage kernel_bench 75 bench/bench_kernels
run_stage profile_validate 70 xring
run_stage sanitizers 55 tests/xring_kernel_tests

failed=0
grep -q 'carried: FAIL\|travel: FAIL' "$work/preflight.txt" && failed=1
awk -F'\t' '$2 != "PASS" && $2 != "MISSING" {bad = 1} END {exit !bad}' "$work/stages.tsv" && failed=1
if [ "$mode" = dry ]; then
  # What comes back: at most 3 files in $OUT, each at most 16 MiB; the summary short enough.
  files=$(find "$out" -type f | wc -l)
  [ "$files" -le "$max_out_files" ] || { echo "OUT: FAIL $files files (at most $max_out_files)"; failed=1; }
  big=$(find "$out" -type f -size +$((max_out_file_bytes / 1024))k | wc -l)
  [ "$big" -eq 0 ] || { echo "OUT: FAIL $big files over 16 MiB"; failed=1; }
  chars=$(wc -m < "$out/summary.md")
  [ "$chars" -lt "$max_summary_chars" ] || { echo "OUT: FAIL summary.md has $chars characters"; failed=1; }
  echo "OUT: $files files, summary.md $chars characters"
fi
[ "$mode" = run ] || [ "${#missing[@]}" -eq 0 ] || [ "$failed" -ne 0 ] || {
  cat "$out/summary.md"
  echo "gpu-check: skipped: $build lacks ${missing[*]}"
  exit 77
}
[ "${#missing[@]}" -eq 0 ] || failed=1
cat "$out/summary.md"
exit $failed
