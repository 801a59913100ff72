#!/usr/bin/env bash
# install_deps.sh — installs the Debian packages cnnbench builds and tests with, if missing.
set -euo pipefail
packages=(build-essential cmake pkg-config zlib1g-dev libcjson-dev libhwloc-dev libopenblas-dev
          libdnnl-dev libcriterion-dev dataset-fashion-mnist python3 python3-torch gnuplot-nox
          valgrind clang libclang-rt-14-dev)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "install_deps: installing ${missing[*]}" >&2
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
fi
