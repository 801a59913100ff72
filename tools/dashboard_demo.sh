#!/usr/bin/env bash
# dashboard_demo.sh — the README's dashboard screenshot, from a fresh clone's committed results:
# a new history database fed with every cnnbench results file under results/, the site generated,
# and headless Chromium's screenshot of it. Files written before results carried git_commit are
# recorded with the commit that added them to the repository (`--commit`), so the x axis shows
# commits rather than "unknown". PyTorch's files in the races are not cnnbench's and are left out.
# usage: tools/dashboard_demo.sh [BUILD_DIR (build)] [PNG (results/dashboard.png)] [SITE_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
png=$(realpath -m "${2:-results/dashboard.png}")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
site=${3:-$work/site}
db=$work/history.sqlite
cnnbench=$build/harness/cnnbench
n=0
while IFS= read -r f; do
  grep -Eq '"tool":[[:space:]]*"cnnbench' "$f" || continue
  commit=()
  if ! grep -q '"git_commit"' "$f"; then
    commit=(--commit "$(git log --diff-filter=A --format=%h -1 -- "$f")")
  fi
  "$cnnbench" history add --quiet --db "$db" "${commit[@]}" "$f" > /dev/null
  n=$((n + 1))
done < <(git ls-files 'results/*.json')
echo "dashboard_demo: $n results files in $db"
"$cnnbench" dashboard --db "$db" --out "$site"
chromium --headless --no-sandbox --disable-gpu --no-first-run --hide-scrollbars \
  --user-data-dir="$work/profile" --window-size=1600,1400 --virtual-time-budget=10000 \
  --screenshot="$png" "file://$(realpath "$site")/index.html" 2> /dev/null
echo "dashboard_demo: screenshot $png"
