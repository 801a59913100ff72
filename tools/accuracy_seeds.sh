#!/usr/bin/env bash
# accuracy_seeds.sh — how much a model's test accuracy after N epochs depends on the seed, for
# cnnbench's CPU backends and for PyTorch with the same network and settings (issues 2 and 3).
#
# One epoch of simplecnn at lr 0.01 / momentum 0.9 ends mid-descent: the test accuracy after it
# moves by a point or two with the seed (initial weights and shuffle order), in PyTorch as much as
# in cnnbench. A single seed therefore says little; this script trains every backend and PyTorch
# for each seed on the full data and writes the per-seed table plus mean, median, min and max.
# The same seed gives blas and onednn the same initial weights and batch order (harness-owned), so
# their per-seed difference is the backends' own; PyTorch draws its own weights and order from the
# seed, so only its distribution is comparable.
#
# Usage: tools/accuracy_seeds.sh                 simplecnn, 1 epoch, seeds 1..10 and 42
# Settings (environment): MODEL (simplecnn), EPOCHS (1), SEEDS ("1 2 3 4 5 6 7 8 9 10 42"),
#   BACKENDS ("blas onednn"), THREADS (2), CNNBENCH (build-lead/harness/cnnbench),
#   PY (/usr/bin/python3; "" skips PyTorch), OUT (results/accuracy-seeds-$MODEL-${EPOCHS}ep.md)
set -uo pipefail
cd "$(dirname "$0")/.."

MODEL=${MODEL:-simplecnn}
EPOCHS=${EPOCHS:-1}
SEEDS=${SEEDS:-"1 2 3 4 5 6 7 8 9 10 42"}
BACKENDS=${BACKENDS:-"blas onednn"}
THREADS=${THREADS:-2}
CNNBENCH=${CNNBENCH:-build-lead/harness/cnnbench}
PY=${PY-/usr/bin/python3}
OUT=${OUT:-results/accuracy-seeds-$MODEL-${EPOCHS}ep.md}
RAW=${OUT%.md}
BEST_ENV=(OPENBLAS_NUM_THREADS=1 MALLOC_MMAP_THRESHOLD_=1073741824
          MALLOC_TRIM_THRESHOLD_=4294967296 MALLOC_TOP_PAD_=268435456)

if [ ! -x "$CNNBENCH" ]; then
    echo "accuracy_seeds: no cnnbench at $CNNBENCH (build it, or set CNNBENCH=...)" >&2
    exit 1
fi
mkdir -p "$RAW" || exit 1

columns=()
for b in $BACKENDS; do columns+=("$b"); done
[ -n "$PY" ] && columns+=(torch)

# accuracy SEED COLUMN: runs one contender and prints its final test accuracy in percent.
accuracy() {
    local seed=$1 col=$2 json="$RAW/$col-seed$1.json" log="$RAW/$col-seed$1.log"
    if [ "$col" = torch ]; then
        env "${BEST_ENV[@]}" "$PY" tools/pytorch_compare.py --model "$MODEL" --epochs "$EPOCHS" \
            --threads "$THREADS" --seed "$seed" --json "$json" > "$log" 2>&1 || return 1
    else
        "$CNNBENCH" --backend "$col" --model "$MODEL" --epochs "$EPOCHS" --threads "$THREADS" \
            --seed "$seed" --out "$json" > "$log" 2>&1 || return 1
    fi
    python3 - "$json" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
acc = r["final"]["test_accuracy"] if "final" in r else r["epochs"][-1]["test_accuracy"]
print(f"{100 * acc:.2f}")
EOF
}

declare -A acc
for seed in $SEEDS; do
    for col in "${columns[@]}"; do
        if a=$(accuracy "$seed" "$col"); then
            acc[$seed,$col]=$a
        else
            acc[$seed,$col]=failed
            echo "accuracy_seeds: $col seed $seed failed; see $RAW/$col-seed$seed.log" >&2
        fi
        echo "seed $seed  $col  ${acc[$seed,$col]}%"
    done
done

{
    echo "# $MODEL: test accuracy after $EPOCHS epoch(s), per seed"
    echo
    echo "Made by \`tools/accuracy_seeds.sh\` on $(date +%Y-%m-%d): full Fashion-MNIST (60,000 training,"
    echo "10,000 test images), the model file's batch, optimizer, lr and normalization, $THREADS threads."
    echo "cnnbench: \`$CNNBENCH\` ($("$CNNBENCH" --version 2>/dev/null | head -1)), source tree $(git describe --always --dirty 2>/dev/null)."
    [ -n "$PY" ] && echo "PyTorch: \`$PY\`, torch $("$PY" -c 'import torch; print(torch.__version__)' 2>/dev/null), tools/pytorch_compare.py, run with ${BEST_ENV[*]}."
    echo "blas and onednn start from the same weights and batch order for a given seed; PyTorch draws"
    echo "its own from the seed, so compare its distribution, not its row."
    echo
    printf '| seed |'; for col in "${columns[@]}"; do printf ' %s |' "$col"; done; echo
    printf '|---:|'; for col in "${columns[@]}"; do printf -- '---:|'; done; echo
    for seed in $SEEDS; do
        printf '| %s |' "$seed"
        for col in "${columns[@]}"; do printf ' %s |' "${acc[$seed,$col]}"; done
        echo
    done
    for stat in mean median min max; do
        printf '| **%s** |' "$stat"
        for col in "${columns[@]}"; do
            vals=()
            for seed in $SEEDS; do vals+=("${acc[$seed,$col]}"); done
            python3 - "$stat" "${vals[@]}" <<'EOF'
import statistics, sys
stat, vals = sys.argv[1], [float(v) for v in sys.argv[2:] if v != "failed"]
f = {"mean": statistics.mean, "median": statistics.median, "min": min, "max": max}[stat]
print(f" {f(vals):.2f} |" if vals else " - |", end="")
EOF
        done
        echo
    done
} > "$OUT"
echo "accuracy_seeds: wrote $OUT"
