#!/usr/bin/env bash
# Plans every shipped combination in tests/baselines/ and gates it against its committed
# baseline, so an unintended change to the cost model fails CI with a readable table.
#   scripts/gate-baselines.sh XRING [--update]
# Baselines are named MODEL__CLUSTER__WORKLOAD.plan.json; --update rewrites them all.
set -euo pipefail
xring=${1:?usage: scripts/gate-baselines.sh path/to/xring [--update]}
mode=${2:-}
dir=$(cd "$(dirname "$0")/../tests/baselines" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
status=0
for baseline in "$dir"/*.plan.json; do
  name=$(basename "$baseline" .plan.json)
  IFS='|' read -r model cluster workload <<< "${name//__/|}"
  "$xring" plan --model "$model" --cluster "$cluster" --workload "$workload" -o "$work/$name.json" > /dev/null
  if [ "$mode" = "--update" ]; then
    "$xring" gate --baseline "$baseline" --current "$work/$name.json" --update-baseline > /dev/null
    echo "updated $name"
  elif ! "$xring" gate --baseline "$baseline" --current "$work/$name.json" --title "$name"; then
    status=1
  fi
done
exit $status
