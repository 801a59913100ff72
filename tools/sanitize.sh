#!/bin/sh
# sanitize.sh — builds cnnbench with ASan + UBSan (CMake option CNB_SANITIZE=ON) in its own build
# directory and runs the CPU test suite under it. Any sanitizer report fails the run
# (halt_on_error, -fno-sanitize-recover). Usage: tools/sanitize.sh [build-dir] [extra ctest args]
#
# What runs: every CTest test except the heavy whole-suite cross-checks that only repeat, ten
# times slower under ASan, kernel loops the other tests already cover (CNB_SANITIZE_EXCLUDE,
# default: the oneDNN and BLAS kernel sweeps, the GPU tests, which cannot run here, and
# test_compare_cmd, whose planted-slowdown gate measures timings that ASan distorts). Set
# CNB_SANITIZE_EXCLUDE= (empty) to run everything. Warnings are not errors here: -fsanitize changes
# what GCC warns about (e.g. -Wclobbered near setjmp), and this build is about run-time errors.
set -eu
src=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$src/build-asan}
[ $# -gt 0 ] && shift
# absolute: the suppressions path below must hold in every test's working directory
mkdir -p "$build" && build=$(cd "$build" && pwd)
exclude=${CNB_SANITIZE_EXCLUDE-'^(test_onednn|test_blas|test_cuda.*|test_cudnn.*|test_compare_cmd)$'}
cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCNB_SANITIZE=ON -DCNB_WERROR=OFF >/dev/null
cmake --build "$build" -j"$(nproc)"
# detect_leaks: the harness frees what it allocates; odr/ init-order checks on. OpenBLAS and
# oneDNN keep thread pools alive at exit, which LSan reports as leaks of the libraries: suppress
# those by library name only.
supp="$build/lsan.supp"
printf 'leak:libopenblas\nleak:libdnnl\nleak:libgomp\nleak:libcriterion\n' > "$supp"
export ASAN_OPTIONS="halt_on_error=1:detect_leaks=1:abort_on_error=0:strict_string_checks=1:detect_stack_use_after_return=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
export LSAN_OPTIONS="suppressions=$supp"
export CNB_SANITIZED=1
cd "$build"
if [ -n "$exclude" ]; then
  ctest --output-on-failure -j1 -E "$exclude" "$@"
else
  ctest --output-on-failure -j1 "$@"
fi
