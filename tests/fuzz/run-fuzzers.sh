#!/usr/bin/env bash
# Runs libFuzzer targets one after another, one process each (the machines are shared), and
# prints one summary line per target: seconds, inputs run, corpus size, outcome tally, crashes.
#   tests/fuzz/run-fuzzers.sh [--build DIR] [--seconds N] [--timeout T] [TARGET...]
# DIR: the fuzz preset's build folder (default build/fuzz); N: seconds per target (180);
# T: wall seconds one input may take before it counts as a hang (10; raise it when the fuzzers
# run niced beside other work, where a starved process passes 10 s on inputs that take 0.2 s);
# TARGET: names as in tests/fuzz/seeds.txt (default: all). New inputs go to
# DIR/tests/fuzz/found/TARGET, crash reproducers to DIR/tests/fuzz/crashes/TARGET, logs to
# DIR/tests/fuzz/logs. Exit status 1 when any target crashed.
set -euo pipefail
src="$(cd "$(dirname "$0")" && pwd)"
build="$src/../../build/fuzz"
seconds=180
timeout=10
targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --build) build="$2"; shift 2 ;;
    --seconds) seconds="$2"; shift 2 ;;
    --timeout) timeout="$2"; shift 2 ;;
    *) targets+=("$1"); shift ;;
  esac
done
[ ${#targets[@]} -gt 0 ] || targets=(model cluster workload set_override plan run_report
                                     gate_rules hf_config device_profile head_profile scores)
out="$build/tests/fuzz"
status=0
for t in "${targets[@]}"; do
  bin="$out/fuzz_$t"
  [ -x "$bin" ] || { echo "run-fuzzers: $bin is missing: cmake --build --preset fuzz" >&2; exit 2; }
  mkdir -p "$out/found/$t" "$out/crashes/$t" "$out/logs" "$out/seeds/$t"
  corpus=("$out/found/$t" "$out/seeds/$t")
  [ -d "$src/corpus/$t" ] && corpus+=("$src/corpus/$t")
  log="$out/logs/$t.log"
  # -timeout: one input over T s is a hang; -rss_limit_mb: a leak or blow-up is a finding.
  timer=()  # CPU seconds of the run, where GNU time is installed
  [ -x /usr/bin/time ] && timer=(/usr/bin/time -f "%U %S" -o "$out/logs/$t.cpu")
  XRING_FUZZ_TALLY=1 "${timer[@]}" "$bin" -max_total_time="$seconds" -timeout="$timeout" \
    -rss_limit_mb=2048 -report_slow_units="$timeout" \
    -print_final_stats=1 -dict="$src/xring.dict" -artifact_prefix="$out/crashes/$t/" \
    "${corpus[@]}" > "$log" 2>&1 || status=1
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
  tally=$(grep '^xring fuzz' "$log" | tail -1 || true)
  # libFuzzer also writes slow-unit-* there (an input over the slow-unit time, not a failure).
  crashes=$(find "$out/crashes/$t" -type f ! -name 'slow-unit-*' | wc -l)
  slow=$(find "$out/crashes/$t" -type f -name 'slow-unit-*' | wc -l)
  cpu="?"
  [ -f "$out/logs/$t.cpu" ] && cpu=$(awk 'END { printf "%.0f", $1 + $2 }' "$out/logs/$t.cpu")
  echo "$t: ${seconds} s (${cpu} CPU-s), ${runs} runs, corpus $(find "$out/found/$t" -type f | wc -l) new," \
       "crashes ${crashes}, slow units ${slow}; ${tally#xring fuzz $t: }"
done
exit $status
