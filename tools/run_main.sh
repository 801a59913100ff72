#!/usr/bin/env bash
# run_main.sh — the main job: install what is missing, build (Release), then train simplecnn on
# Fashion-MNIST under every backend that loads here (naive as a timed sample), check each against
# the naive reference, and print one comparison table (cnnbench --backend all).
# Extra arguments go to cnnbench (e.g. --epochs 1, --backend naive,blas, --model network).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install_deps.sh
echo "run_main: building cnnbench (Release) into build/ (log: build.log)" >&2
{ cmake -S . -B build -DCMAKE_BUILD_TYPE=Release && cmake --build build -j "$(nproc)"; } \
  > build.log 2>&1 || { cat build.log; exit 1; }
exec build/harness/cnnbench --backend all --model simplecnn "$@"
