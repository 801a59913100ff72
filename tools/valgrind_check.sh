#!/bin/sh
# valgrind_check.sh — a short training under the naive backend in valgrind memcheck: any memory
# error or any definite / indirect leak fails (exit 1). Usage: tools/valgrind_check.sh [build-dir]
# Uses an ordinary (non-sanitized) build; builds it if needed.
set -eu
src=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$src/build}
if [ ! -x "$build/harness/cnnbench" ] || [ ! -f "$build/backends/libcnb_naive.so" ]; then
  cmake -S "$src" -B "$build" >/dev/null
  cmake --build "$build" -j"$(nproc)" --target cnnbench cnb_naive
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
valgrind --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite,indirect \
  --show-leak-kinds=definite,indirect --track-origins=yes -q \
  "$build/harness/cnnbench" --backend naive --model network --steps 3 --train-limit 300 \
  --test-limit 100 --no-progress --out "$tmp/results.json" --save "$tmp/ck.safetensors"
# The checkpoint path too: load what was saved and resume from it.
valgrind --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite,indirect \
  --show-leak-kinds=definite,indirect -q \
  "$build/harness/cnnbench" --backend naive --model network --steps 5 --train-limit 300 \
  --test-limit 100 --no-progress --quiet --out "$tmp/results2.json" --resume "$tmp/ck.safetensors"
echo "valgrind: no memory errors, no definite or indirect leaks"
