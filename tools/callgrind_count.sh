#!/usr/bin/env bash
# callgrind_count.sh — a noise-free performance metric: the total instruction count (Ir) of a fixed
# training run (naive backend, model network, 5 steps) under valgrind's callgrind, compared with
# the committed baseline results/callgrind-baseline.txt. Instruction counts do not swing with
# the machine's load the way times do, so the gate can be tight (1% by default).
#
# usage: tools/callgrind_count.sh [--update] [BUILD_DIR]     (BUILD_DIR default: build-test)
#   --update                 write the measured count as the new baseline
#   CNB_CALLGRIND_THRESHOLD  allowed increase in percent (default 1)
# exit: 0 within the threshold, 1 more instructions than allowed, 2 setup error,
#       77 valgrind missing and cannot be installed (a skip, not a pass)
set -euo pipefail
cd "$(dirname "$0")/.."
. tools/gate_args.sh callgrind_count "$@"
baseline=results/callgrind-baseline.txt
threshold=${CNB_CALLGRIND_THRESHOLD:-1}
if ! command -v valgrind > /dev/null; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get > /dev/null; then
    echo "callgrind_count: installing valgrind" >&2
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind) > /dev/null
  fi
  command -v valgrind > /dev/null || { echo "[SKIP] callgrind_count: valgrind is not installed" >&2; exit 77; }
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cmd=("$exe" --backend naive --model network --steps 5 --train-limit 500 --test-limit 100
     --no-progress --quiet --out "$work/run.json")
valgrind --tool=callgrind --callgrind-out-file="$work/callgrind.out" "${cmd[@]}" > "$work/log" 2>&1 || {
  cat "$work/log" >&2; echo "callgrind_count: the run failed under valgrind" >&2; exit 2; }
ir=$(awk '/^summary:/ {print $2}' "$work/callgrind.out")
[ -n "$ir" ] || { echo "callgrind_count: no 'summary:' line in the callgrind output" >&2; exit 2; }
echo "callgrind_count: Ir = $ir for: ${cmd[*]:1}"
if [ "$update" = 1 ]; then
  {
    echo "# Instruction count (callgrind Ir) of: cnnbench ${cmd[*]:1:12}"
    echo "# valgrind $(valgrind --version | sed 's/valgrind-//'), $(date -u +%Y-%m-%d), $(uname -m);"
    echo "# refresh with tools/callgrind_count.sh --update after an intended change to the naive"
    echo "# backend, the training loop or the data loader."
    echo "$ir"
  } > "$baseline"
  echo "callgrind_count: baseline written to $baseline"
  exit 0
fi
[ -f "$baseline" ] || { echo "callgrind_count: no baseline $baseline (run with --update)" >&2; exit 2; }
base=$(grep -v '^#' "$baseline" | head -1 | tr -d '[:space:]')
awk -v b="$base" -v n="$ir" -v t="$threshold" 'BEGIN {
  d = 100 * (n - b) / b
  printf "callgrind_count: baseline %.0f, now %.0f: %+.4f%% (threshold +%s%%)\n", b, n, d, t
  if (d > t) { print "callgrind_count: REGRESSION: more instructions than the threshold allows"; exit 1 }
  if (d < -t) print "callgrind_count: note: fewer instructions than the baseline; refresh it with --update"
  exit 0 }'
