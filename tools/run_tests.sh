#!/usr/bin/env bash
# run_tests.sh — install what is missing, build from scratch with warnings as errors, and run the
# whole test suite under CTest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install_deps.sh
rm -rf build-test
cmake -S . -B build-test -DCMAKE_BUILD_TYPE=Release -DCNB_WERROR=ON
cmake --build build-test -j "$(nproc)"
cd build-test
ctest --output-on-failure --timeout 900 "$@"
