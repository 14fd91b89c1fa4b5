#!/bin/bash
# Decode plan JSONs that a change to decode planning must leave byte-identical (date and
# revision lines dropped): compare the folders two builds write with `diff -r`.
# usage: bench/decode-outputs.sh XRING OUTDIR
# The 128- and 16-kv-head models and their head profiles are the ones bench_plan writes to
# /tmp (run `bench_plan --benchmark_filter=PlanDecode` once first).
set -eu
X=$1; O=$2; mkdir -p "$O"
M128=/tmp/xring-bench-llama-3-70b-kv128.json; H128=/tmp/xring-bench-heads-kv128.json
M16=/tmp/xring-bench-llama-3-70b-kv16.json; H16=/tmp/xring-bench-heads-kv16.json
strip() { grep -v -e '"date"' -e '"git_revision"'; }
P128="-m $M128 -w fairkv-decode --set workload.head_profile=$H128"
P16="-m $M16 -w fairkv-decode --set workload.head_profile=$H16"
"$X" plan -m llama-3-70b -w fairkv-decode --json | strip > "$O/pfair.json"
for b in 1 7 33 100 257; do
  for g in 64 32 16 8 2; do
    "$X" plan $P128 --set cluster.gpus_per_node=$g --set workload.batch=$b --json | strip > "$O/p128g${g}_b$b.json"
  done
  for g in 8 4 2; do
    "$X" plan $P16 --set cluster.gpus_per_node=$g --set workload.batch=$b --json | strip > "$O/p16g${g}_b$b.json"
  done
  "$X" plan -m llama-3-70b -w fairkv-decode --set workload.batch=$b --json | strip > "$O/pfair_b$b.json"
  for kb in 300 2048; do
    "$X" plan $P128 --set cluster.gpus_per_node=32 --set workload.batch=$b --set workload.kv_budget=$kb --json | strip > "$O/p128g32_b${b}_kv$kb.json"
  done
done
echo "wrote $(ls "$O" | wc -l) plans to $O"
