# shellcheck shell=bash disable=SC2034  # sets variables for the script that sources it
# tools/gate_args.sh — sourced by the gate scripts (callgrind_count.sh, ci_bench.sh) from the
# repository root as `. tools/gate_args.sh NAME "$@"`: reads their [--update] [BUILD_DIR] into
# update (0/1), build (default build-test) and exe, and exits 2 with "NAME: ... not built" when
# cnnbench is missing there.
gate_name=$1
shift
update=0
if [ "${1:-}" = "--update" ]; then update=1; shift; fi
build=${1:-build-test}
exe=$build/harness/cnnbench
[ -x "$exe" ] || { echo "$gate_name: $exe not built (run cmake --build $build first)" >&2; exit 2; }
