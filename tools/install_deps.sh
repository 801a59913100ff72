#!/usr/bin/env bash
# install_deps.sh — installs the Debian packages cnnbench builds and tests with, if missing.
# Quiet: one line per step; apt's own output goes to a log that is shown whole only if a step
# fails. CNB_DEPS_LOG names the log (default: a file under ${TMPDIR:-/tmp}).
set -euo pipefail
packages=(build-essential cmake pkg-config zlib1g-dev libcjson-dev libhwloc-dev libopenblas-dev
          libdnnl-dev libcriterion-dev dataset-fashion-mnist python3 python3-torch python3-venv
          gnuplot-nox valgrind clang libclang-rt-14-dev libopenmpi-dev openmpi-bin
          libsqlite3-dev chromium libjs-chart.js libssl-dev dpkg-dev)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
((${#missing[@]})) || exit 0

log=${CNB_DEPS_LOG:-${TMPDIR:-/tmp}/cnnbench-install-deps.log}
: > "$log"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
run_step() { # run_step "what" command...: one line, the log on failure
  local what=$1; shift
  printf 'install_deps: %s ... ' "$what" >&2
  if "$@" >> "$log" 2>&1; then
    echo "done" >&2
  else
    echo "FAILED (log: $log)" >&2
    cat "$log" >&2
    exit 1
  fi
}
echo "install_deps: ${#missing[@]} package(s) missing; apt's output goes to $log" >&2
run_step "apt-get update" $sudo apt-get update -q
run_step "apt-get install ${missing[*]}" \
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
