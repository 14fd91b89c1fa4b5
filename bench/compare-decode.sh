#!/bin/bash
# Decode planning, two builds side by side: the decode benchmarks and the issue-18 sweep,
# alternated before, after, before, after; then whether the sweep's CSV is byte-identical.
# usage: bench/compare-decode.sh BEFORE_BUILD AFTER_BUILD   (build folders, e.g. build/host)
# The machine should be otherwise idle; read each figure beside `before` from the same run.
set -u
B=$1; A=$2
F='PlanDecode|FairKvDecode|DecodeSweep'
date -u; uptime
for round in 1 2; do
  for which in before after; do
    dir=$B; [ $which = after ] && dir=$A
    echo "== $which round $round"; "$dir/bench/bench_plan" --benchmark_filter="$F" 2>&1 | grep BM_
  done
done
for round in 1 2; do
  for which in before after; do
    dir=$B; [ $which = after ] && dir=$A
    /usr/bin/time -f "$which round $round: %e s wall, %U s user, %S s sys, %M KB maxrss" \
      "$dir/xring" whatif -m llama-3-70b -w fairkv-decode --vary workload.batch=1..100:+1 \
      --vary workload.kv_budget=256..6592:+64 --csv "/tmp/decode-sweep-$which.csv" > /dev/null
  done
done
cmp /tmp/decode-sweep-before.csv /tmp/decode-sweep-after.csv && echo "CSV byte-identical"
uptime; date -u
