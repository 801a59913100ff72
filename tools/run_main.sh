#!/usr/bin/env bash
# run_main.sh — the main job: install what is missing, build (Release), and train simplecnn on
# Fashion-MNIST under OpenBLAS, printing per-epoch accuracy, throughput and the confusion matrix.
# Extra arguments go to cnnbench (e.g. --epochs 1).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install_deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release > build.log 2>&1 || { cat build.log; exit 1; }
cmake --build build -j "$(nproc)" >> build.log 2>&1 || { cat build.log; exit 1; }
exec build/harness/cnnbench --backend blas --model simplecnn "$@"
