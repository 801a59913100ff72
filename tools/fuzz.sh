#!/bin/sh
# fuzz.sh — builds the libFuzzer targets (clang, -fsanitize=fuzzer,address,undefined) and runs each
# for a bounded time on its committed seed corpus, then replays every file in
# tests/fuzz/regressions/<target>/ (inputs that once crashed: they must not crash again).
# Usage: tools/fuzz.sh [seconds-per-target (default 60)] [build-dir (default build-fuzz)]
# Exit status: non-zero when a target crashes, leaks, hangs (> 10 s on one input) or a
# regression input fails. New crash inputs are left in <build-dir>/crashes/<target>/.
set -eu
src=$(cd "$(dirname "$0")/.." && pwd)
secs=${1:-60}
build=${2:-$src/build-fuzz}
targets="idx csv model checkpoint compare"
CC=${CC:-clang}
mkdir -p "$build/obj" "$build/crashes"
flags="-g -O1 -std=c11 -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined"
incs="-I$src/harness/cli -I$src/harness/engine -I$src/harness/io -I$src/harness/abi $(pkg-config --cflags libcjson hwloc)"
libs="$(pkg-config --libs libcjson hwloc) -lz -ldl -lm"
# The core sources the parsers need (cmd_compare pulls in the results-reading helpers).
core="util paths data atomic_file model checkpoint results train nonfinite machine compare runctx profiler checks cmd_check cmd_bench cmd_compare cmd_report loader
      openblas_core options comparison bench_schedule bench_stats bench_output
      distributed dist_report dist_device check_dist bench_dist flops"
objs=""
for f in $core; do
  file=$(ls "$src"/harness/*/"$f.c" 2>/dev/null | head -1)
  [ -n "$file" ] || { echo "fuzz.sh: harness source $f.c not found" >&2; exit 1; }
  $CC $flags $incs -DCNB_VERSION='"fuzz"' -DCNB_GIT_COMMIT='"fuzz"' \
    -c "$file" -o "$build/obj/$f.o"
  objs="$objs $build/obj/$f.o"
done
for t in $targets; do
  $CC $flags -fsanitize=fuzzer $incs -I"$src/tests/fuzz" "$src/tests/fuzz/fuzz_$t.c" $objs $libs \
    -o "$build/fuzz_$t"
done
status=0
export ASAN_OPTIONS="detect_leaks=1:halt_on_error=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
for t in $targets; do
  # Regressions first: each saved input replayed once.
  reg="$src/tests/fuzz/regressions/$t"
  # (.gitkeep and other dot files only keep the folder in git; they are not inputs)
  inputs=$(find "$reg" -maxdepth 1 -type f ! -name '.*' 2>/dev/null | sort)
  if [ -n "$inputs" ]; then
    # shellcheck disable=SC2086
    "$build/fuzz_$t" -close_fd_mask=3 $inputs || { echo "fuzz.sh: $t: a regression input fails again"; status=1; }
  fi
  work="$build/corpus/$t"
  mkdir -p "$work" "$build/crashes/$t"
  echo "fuzz.sh: $t for $secs s"
  if ! "$build/fuzz_$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
      -close_fd_mask=3 -print_final_stats=1 -artifact_prefix="$build/crashes/$t/" \
      "$work" "$src/tests/fuzz/corpus/$t" 2> "$build/fuzz_$t.log"; then
    echo "fuzz.sh: $t FAILED; see $build/fuzz_$t.log and $build/crashes/$t/"
    tail -40 "$build/fuzz_$t.log"
    status=1
  fi
  grep -E "stat::number_of_executed_units|stat::peak_rss_mb" "$build/fuzz_$t.log" | sed "s/^/  $t: /"
done
exit $status
