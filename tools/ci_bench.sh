#!/usr/bin/env bash
# ci_bench.sh — CI regression timing: a short, bounded bench (naive and blas on model network,
# --quick with at least 3 s and 10 runs per cell: about 15 s) compared with the committed baseline results/ci-baseline.json.
# The gate is on the within-run speed-up blas/naive, not on absolute images/s: absolute times on
# a shared machine swing by tens of percent between runs, the ratio of two backends measured
# side by side (time-balanced rounds) much less.
#
# usage: tools/ci_bench.sh [--update] [BUILD_DIR]          (BUILD_DIR default: build-test)
#   --update            write the new run as the baseline (after an intended speed change of
#                       naive or blas: the ratio moves when either does)
#   CNB_CI_THRESHOLD    smallest drop that counts, percent (default 25: the quick mode's speed-up
#                       moves by up to ~15% between runs on this 2-core machine; a 2x slowdown of
#                       one kernel family moves it by ~50%)
#   CNB_CI_OUT          keep the new results here instead of a temporary file
# exit: 0 no regression, 1 regression, 2 setup error
set -euo pipefail
cd "$(dirname "$0")/.."
. tools/gate_args.sh ci_bench "$@"
baseline=results/ci-baseline.json
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
new=${CNB_CI_OUT:-$work/ci-bench.json}
"$exe" bench --backends naive,blas --model network --quick --min-time 3 --min-runs 10 --infer-images 5000 --out "$new"
if [ "$update" = 1 ]; then
  cp "$new" "$baseline"
  echo "ci_bench: baseline written to $baseline"
  exit 0
fi
[ -f "$baseline" ] || { echo "ci_bench: no baseline $baseline (run with --update)" >&2; exit 2; }
exec "$exe" compare "$baseline" "$new" --threshold "${CNB_CI_THRESHOLD:-25}" --gate ratios
