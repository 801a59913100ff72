#!/usr/bin/env bash
# pytorch_race.sh — cnnbench's CPU backends against PyTorch on this machine, in one run, model by
# model, first measuring the fp32 ceiling (`cnnbench ceiling`). For each model, in ROUNDS passes
# (each contender once per pass), one after the other:
#   cnnbench blas, cnnbench onednn            run as a user would: plain environment, --threads 2
#   Debian's PyTorch (/usr/bin/python3)       "as installed" (plain environment) and "at its best"
#   PyTorch TORCH_VERSION from PyPI (venv)    "as installed" and "at its best"
# "At its best" is the plain environment plus BEST_ENV below: OpenBLAS single-threaded (so its
# pthread pool does not fight PyTorch's OpenMP pool for the two cores), glibc malloc told to
# keep freed memory (so PyTorch's per-step buffers do not page-fault afresh every step: ~10 us per
# 4 KiB page in this VM), and the OpenBLAS core cnnbench chose from the CPU's feature bits when
# OpenBLAS's own choice was below the CPU (Debian's torch runs its linear layers on OpenBLAS).
# cnnbench gets none of the variables; it is run plain.
# From a fresh clone it needs nothing set: cnnbench is the project's own build (built here, into
# build/, when missing), and the PyPI PyTorch lives in a virtual environment created once and
# cached under ${XDG_CACHE_HOME:-~/.cache}/cnnbench/ (a few GB; the first run downloads it).
# Every contender trains the same network with the model file's batch, optimizer, lr and
# normalization on the same Fashion-MNIST images and evaluates on the test set at batch 1000 after
# each epoch; the figures are medians over the epochs (train) and over the evaluation passes
# (infer). Writes $OUT_DIR/$STAMP.md (the tables) and $OUT_DIR/$STAMP/ (raw JSONs, logs, load).
#
# Usage: tools/pytorch_race.sh                      the full race (~23 min on 2 cores: 3 rounds)
#        ROUNDS=1 EPOCHS=1 TRAIN_LIMIT=500 TEST_LIMIT=1000 OUT_DIR=/tmp/race tools/pytorch_race.sh  (dry run)
# Settings (environment): EPOCHS (3), TRAIN_LIMIT (20000), TEST_LIMIT (0 = all 10,000),
#   THREADS (2), QUIET_WAIT (20: the most seconds to wait for an idle machine before each run),
#   RETRIES (1: reruns of a run that other work disturbed), ROUNDS (3: passes over the
#   contenders of a model, each contender once per pass),
#   MODELS, CNNBENCH (default build/harness/cnnbench), PY_DEBIAN, TORCH_VERSION (2.15.0),
#   TORCH_VENV (the cached venv; PY_NEW=its python), OUT_DIR (results/pytorch-race), STAMP (date).
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

EPOCHS=${EPOCHS:-3}
TRAIN_LIMIT=${TRAIN_LIMIT:-20000}
TEST_LIMIT=${TEST_LIMIT:-0}
THREADS=${THREADS:-2}
QUIET_WAIT=${QUIET_WAIT:-20}
RETRIES=${RETRIES:-1}
ROUNDS=${ROUNDS:-3}
MODELS=${MODELS:-"simplecnn cnn network network3 lenet5"}
CNNBENCH=${CNNBENCH:-$ROOT/build/harness/cnnbench}
PY_DEBIAN=${PY_DEBIAN:-/usr/bin/python3}
TORCH_VERSION=${TORCH_VERSION:-2.15.0}
TORCH_VENV=${TORCH_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/cnnbench/venv-torch-$TORCH_VERSION}
PY_NEW=${PY_NEW:-$TORCH_VENV/bin/python}
OUT_DIR=${OUT_DIR:-results/pytorch-race}
STAMP=${STAMP:-$(date +%Y-%m-%d)}
BEST_ENV=(OPENBLAS_NUM_THREADS=1 MALLOC_MMAP_THRESHOLD_=1073741824
          MALLOC_TRIM_THRESHOLD_=4294967296 MALLOC_TOP_PAD_=268435456)

RUN_DIR=$OUT_DIR/$STAMP
mkdir -p "$RUN_DIR" || exit 1
LOAD_TSV=$RUN_DIR/load.tsv
printf '%s\t' run attempt waited_s elapsed_s run_cpu_s other_cpu_cores steal_cores \
    loadavg_before loadavg_after > "$LOAD_TSV"
printf 'rc\n' >> "$LOAD_TSV"

limits=(--epochs "$EPOCHS" --threads "$THREADS")
[ "$TRAIN_LIMIT" -gt 0 ] && limits+=(--train-limit "$TRAIN_LIMIT")
[ "$TEST_LIMIT" -gt 0 ] && limits+=(--test-limit "$TEST_LIMIT")

if [ ! -x "$CNNBENCH" ] && [ "$CNNBENCH" = "$ROOT/build/harness/cnnbench" ]; then
    echo "pytorch_race: building cnnbench (Release) into build/ (log: build.log)" >&2
    { cmake -S . -B build -DCMAKE_BUILD_TYPE=Release && cmake --build build -j "$(nproc)"; } \
        > build.log 2>&1 || { cat build.log >&2; exit 1; }
fi
CNNBENCH=$(readlink -f "$CNNBENCH")
# Called by its path from the project root when it lies inside (the script runs there), so the
# command lines the runs record name no folder of this machine.
case "$CNNBENCH" in "$ROOT"/*) CNNBENCH=./${CNNBENCH#"$ROOT"/} ;; esac
if [ ! -x "$CNNBENCH" ]; then
    echo "pytorch_race: no cnnbench at $CNNBENCH (set CNNBENCH=...)" >&2
    exit 1
fi
# The PyPI PyTorch: a venv made once (in a temporary folder, moved into place when complete, so
# an interrupted download never leaves a half venv behind) and reused by every later race.
if [ ! -x "$PY_NEW" ] && [ "$PY_NEW" = "$TORCH_VENV/bin/python" ]; then
    echo "pytorch_race: creating $TORCH_VENV with torch==$TORCH_VERSION from PyPI (once; log:" \
         "$TORCH_VENV.log)" >&2
    mkdir -p "$(dirname "$TORCH_VENV")" && rm -rf "$TORCH_VENV.tmp" &&
        "$PY_DEBIAN" -m venv "$TORCH_VENV.tmp" > "$TORCH_VENV.log" 2>&1 &&
        "$TORCH_VENV.tmp/bin/python" -m pip install -q "torch==$TORCH_VERSION" numpy \
            >> "$TORCH_VENV.log" 2>&1 &&
        mv "$TORCH_VENV.tmp" "$TORCH_VENV" ||
        echo "pytorch_race: the venv could not be made (see $TORCH_VENV.log)" >&2
fi
have_new=1
if [ ! -x "$PY_NEW" ] || ! "$PY_NEW" -c 'import torch' 2>/dev/null; then
    echo "pytorch_race: no usable PyTorch at $PY_NEW; its columns will be empty" >&2
    have_new=0
fi
# The OpenBLAS core cnnbench runs on (it chooses one from the CPU's feature bits when OpenBLAS's
# own choice is below the CPU): PyTorch at its best gets the same, unless the user set one.
probe_json=$(mktemp)
"$CNNBENCH" --backend blas --model network --steps 1 --train-limit 100 --test-limit 100 --quiet \
    --no-progress --out "$probe_json" > /dev/null 2>&1
read -r CNB_CORE CNB_CORE_BY < <("$PY_DEBIAN" -c '
import json, sys
i = json.load(open(sys.argv[1]))["backend"]["info"]
print(i.get("openblas.corename", "?"), i.get("openblas.core_chosen_by", "?").split()[0])
' "$probe_json" 2>/dev/null || echo "? ?")
rm -f "$probe_json"
if [ "$CNB_CORE_BY" = "cnnbench" ] && [ -z "${OPENBLAS_CORETYPE:-}" ]; then
    BEST_ENV+=(OPENBLAS_CORETYPE="$CNB_CORE")
fi
echo "pytorch_race: cnnbench's OpenBLAS core: $CNB_CORE (chosen by $CNB_CORE_BY)" >&2

# Busy jiffies (all but idle and iowait) and steal jiffies, from the first line of /proc/stat.
read_cpu() {
    local _cpu user nice system idle iowait irq softirq steal _rest
    read -r _cpu user nice system idle iowait irq softirq steal _rest < /proc/stat
    echo "$((user + nice + system + irq + softirq + steal)) $steal"
}

# Waits (at most QUIET_WAIT seconds) until the machine has been idle for one second — less than
# 0.15 cores busy — so a run starts on a quiet machine when other work allows; prints the wait.
wait_quiet() {
    local hz t0=$SECONDS b a
    hz=$(getconf CLK_TCK)
    while :; do
        b=$(read_cpu); sleep 1; a=$(read_cpu)
        [ $(( (${a% *} - ${b% *}) * 100 / hz )) -lt 15 ] && break
        [ $((SECONDS - t0)) -ge "$QUIET_WAIT" ] && break
    done
    echo $((SECONDS - t0))
}

# run_once NAME ATTEMPT CMD... — runs one contender with its output in NAME.log, and records how
# much CPU the rest of the machine used meanwhile (busy cores minus this run's own CPU time), so a
# run disturbed by other work can be told from a slow one. Sets LAST_OTHER (cores, x100).
run_once() {
    local name=$1 attempt=$2; shift 2
    local hz before after load_before rc waited
    hz=$(getconf CLK_TCK)
    waited=$(wait_quiet)
    load_before=$(cut -d' ' -f1-3 /proc/loadavg)
    before=$(read_cpu)
    echo "  $name" >&2
    /usr/bin/time -f '%e %U %S' -o "$RUN_DIR/$name.time" "$@" > "$RUN_DIR/$name.log" 2>&1
    rc=$?
    after=$(read_cpu)
    read -r e u s < "$RUN_DIR/$name.time" 2> /dev/null || { e=0; u=0; s=0; }
    # /usr/bin/time writes "Command exited with non-zero status N" first on failure.
    [ "$rc" -ne 0 ] && read -r e u s <<< "$(tail -1 "$RUN_DIR/$name.time")"
    rm -f "$RUN_DIR/$name.time"
    awk -v n="$name" -v b="${before% *}" -v a="${after% *}" -v sb="${before#* }" \
        -v sa="${after#* }" -v hz="$hz" -v e="$e" -v u="$u" -v s="$s" -v lb="$load_before" \
        -v la="$(cut -d' ' -f1-3 /proc/loadavg)" -v rc="$rc" -v w="$waited" -v t="$attempt" \
        'BEGIN {
            other = e > 0 ? ((a - b) / hz - u - s) / e : 0; if (other < 0) other = 0;
            steal = e > 0 ? (sa - sb) / hz / e : 0;
            printf "%s\t%d\t%d\t%.1f\t%.1f\t%.2f\t%.2f\t%s\t%s\t%d\n", n, t, w, e, u + s, other,
                   steal, lb, la, rc
        }' >> "$LOAD_TSV"
    LAST_OTHER=$(tail -1 "$LOAD_TSV" | awk -F'\t' '{printf "%d", $6 * 100}')
    [ "$rc" -ne 0 ] && echo "  $name FAILED (exit $rc), see $RUN_DIR/$name.log" >&2
    return 0
}

# run NAME CMD... — run_once, repeated (up to RETRIES more times) while other work used more than
# 0.1 core during the run: on two cores one busy core stalls every two-thread OpenMP barrier, which
# costs PyTorch up to 10x, so a disturbed figure is not worth keeping. The last attempt counts;
# earlier ones keep their logs as NAME.tryN.log and their rows in load.tsv.
run() {
    local name=$1; shift
    local attempt=1
    while :; do
        run_once "$name" "$attempt" "$@"
        [ "$LAST_OTHER" -le 10 ] || [ "$attempt" -gt "$RETRIES" ] && break
        echo "    disturbed (other work used $(awk -v o="$LAST_OTHER" \
              'BEGIN { printf "%.2f", o / 100 }') cores), again" >&2
        mv "$RUN_DIR/$name.log" "$RUN_DIR/$name.try$attempt.log"
        attempt=$((attempt + 1))
    done
}

echo "pytorch_race: $MODELS; $EPOCHS epochs of ${TRAIN_LIMIT/#0/all} training images," \
     "test ${TEST_LIMIT/#0/all 10000} images, $THREADS threads -> $RUN_DIR" >&2
echo "load before: $(uptime)" >&2
uptime > "$RUN_DIR/uptime-start.txt"
# Which sources the cnnbench binary was built from (as far as the tree can say).
src_state="$(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown)"
src_dirty="$(git -C "$ROOT" status --short --untracked-files=no -- harness backends 2>/dev/null |
             awk '{print $2}' | paste -sd' ')"
start_s=$SECONDS
# The machine's fp32 ceiling as the backends' own sgemm reaches it, at the race's threads: the
# yardstick for the share of the machine each contender's training uses.
run "ceiling" "$CNNBENCH" ceiling --backends blas,onednn --threads "$THREADS" \
    --out "$RUN_DIR/ceiling.json"
for m in $MODELS; do
  # Rounds: every contender runs once per round, so the host's slow and fast stretches (this VM's
  # neighbours are invisible to /proc/stat) hit them all alike; the report takes medians over
  # rounds and the median of the per-round ratios.
  for r in $(seq 1 "$ROUNDS"); do
    echo "$m, round $r of $ROUNDS" >&2
    for b in blas onednn; do
        run "$m-cnnbench-$b-r$r" "$CNNBENCH" --backend "$b" --model "$m" "${limits[@]}" \
            --no-progress --out "$RUN_DIR/$m-cnnbench-$b-r$r.json"
        # the same with the backend's fused kernels off: what fusion is worth, beside it
        run "$m-cnnbench-$b-nofusion-r$r" "$CNNBENCH" --backend "$b" --model "$m" \
            "${limits[@]}" --no-fusion --no-progress \
            --out "$RUN_DIR/$m-cnnbench-$b-nofusion-r$r.json"
    done
    pyrun=(tools/pytorch_compare.py --model "$m" "${limits[@]}")
    run "$m-torch-debian-plain-r$r" "$PY_DEBIAN" "${pyrun[@]}" --label "torch-debian-plain" \
        --json "$RUN_DIR/$m-torch-debian-plain-r$r.json"
    run "$m-torch-debian-best-r$r" env "${BEST_ENV[@]}" "$PY_DEBIAN" "${pyrun[@]}" \
        --label "torch-debian-best" --json "$RUN_DIR/$m-torch-debian-best-r$r.json"
    if [ "$have_new" = 1 ]; then
        run "$m-torch-new-plain-r$r" "$PY_NEW" "${pyrun[@]}" --label "torch-new-plain" \
            --json "$RUN_DIR/$m-torch-new-plain-r$r.json"
        run "$m-torch-new-best-r$r" env "${BEST_ENV[@]}" "$PY_NEW" "${pyrun[@]}" \
            --label "torch-new-best" --json "$RUN_DIR/$m-torch-new-best-r$r.json"
    fi
  done
done
uptime > "$RUN_DIR/uptime-end.txt"
echo "load after: $(uptime); race took $((SECONDS - start_s)) s" >&2

# The report: machine, versions, settings, the two tables and the bars of issue 3.
new_version=$([ "$have_new" = 1 ] && "$PY_NEW" -c 'import torch; print(torch.__version__)')
deb_torch=$("$PY_DEBIAN" -c 'import torch; print(torch.__version__)')
RACE_SECONDS=$((SECONDS - start_s)) RUN_DIR=$RUN_DIR STAMP=$STAMP MODELS=$MODELS EPOCHS=$EPOCHS \
TRAIN_LIMIT=$TRAIN_LIMIT TEST_LIMIT=$TEST_LIMIT THREADS=$THREADS QUIET_WAIT=$QUIET_WAIT \
RETRIES=$RETRIES ROUNDS=$ROUNDS CNNBENCH=$CNNBENCH PY_DEBIAN=$PY_DEBIAN PY_NEW=$PY_NEW \
NEW_VERSION=${new_version:-none} DEB_TORCH=$deb_torch BEST_ENV="${BEST_ENV[*]}" \
CNB_CORE="$CNB_CORE" CNB_CORE_BY="$CNB_CORE_BY" \
SRC_STATE="$src_state" SRC_DIRTY="$src_dirty" \
DEB_VERSION="$(dpkg-query -W -f='${Version}' python3-torch 2>/dev/null)" \
CPU_MODEL="$(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -1)" \
"$PY_DEBIAN" - > "$OUT_DIR/$STAMP.md" <<'EOF'
import csv, json, os, statistics

E = os.environ
run_dir, models = E["RUN_DIR"], E["MODELS"].split()


def shown(path):
    """A path as the report names it: relative to the project root when inside it, with ~ for
    the home folder otherwise, so that no machine's layout goes into a committed report."""
    rel = os.path.relpath(path)
    if not rel.startswith(".."):
        return rel
    home = os.path.expanduser("~")
    return "~" + path[len(home):] if home != "/" and path.startswith(home + "/") else path


COLS = [("cnnbench-blas", "cnnbench blas"), ("cnnbench-onednn", "cnnbench onednn"),
        ("cnnbench-blas-nofusion", "cnnbench blas --no-fusion"),
        ("cnnbench-onednn-nofusion", "cnnbench onednn --no-fusion"),
        ("torch-debian-plain", "torch %s as installed" % E["DEB_TORCH"]),
        ("torch-debian-best", "torch %s at its best" % E["DEB_TORCH"]),
        ("torch-new-plain", "torch %s as installed" % E["NEW_VERSION"]),
        ("torch-new-best", "torch %s at its best" % E["NEW_VERSION"])]
# the headline compares cnnbench as it runs by default (fused); --no-fusion columns stand beside
CNB = [c for c, _ in COLS if c.startswith("cnnbench") and not c.endswith("nofusion")]
TORCH = [c for c, _ in COLS if c.startswith("torch")]


ROUNDS = int(E["ROUNDS"])


def load_round(model, col, r):
    try:
        with open(os.path.join(run_dir, f"{model}-{col}-r{r}.json")) as f:
            d = json.load(f)
    except (OSError, ValueError):
        return None
    tp = d.get("throughput", {})
    if "train_images_per_s" not in tp or not d.get("epochs"):
        return None
    return {"train": tp["train_images_per_s"]["median"],
            "infer": tp["infer_images_per_s"]["median"],
            "acc": d["epochs"][-1].get("test_accuracy"), "raw": d}


def load(model, col):
    """A contender's figures: the median over rounds of each round's median over epochs."""
    rounds = [load_round(model, col, r) for r in range(1, ROUNDS + 1)]
    got = [x for x in rounds if x]
    if not got:
        return None
    return {"train": statistics.median(x["train"] for x in got),
            "infer": statistics.median(x["infer"] for x in got),
            "acc": got[0]["acc"], "raw": got[0]["raw"], "rounds": rounds}


res = {m: {c: load(m, c) for c, _ in COLS} for m in models}


def round_ratios(model, key):
    """best cnnbench / best PyTorch within each round that has both."""
    out = []
    for r in range(ROUNDS):
        bc = [res[model][c]["rounds"][r][key] for c in CNB
              if res[model][c] and res[model][c]["rounds"][r]]
        bt = [res[model][c]["rounds"][r][key] for c in TORCH
              if res[model][c] and res[model][c]["rounds"][r]]
        if bc and bt:
            out.append(max(bc) / max(bt))
    return out
loads, attempts = {}, []  # loads: the last attempt of each run, the one whose figures count
with open(os.path.join(run_dir, "load.tsv")) as f:
    for row in csv.DictReader(f, delimiter="\t"):
        loads[row["run"]] = row
        attempts.append(row)

# Machine and versions from the raw results themselves.
cnb_meta = next((r["raw"] for m in models for c in CNB if (r := res[m][c])), {})
t_deb = next((r["raw"]["torch"] for m in models if (r := res[m]["torch-debian-plain"])), {})
t_new = next((r["raw"]["torch"] for m in models if (r := res[m]["torch-new-plain"])), {})


def fmt(v):
    return "—" if v is None else f"{v:,.0f}"


def best(model, cols, key):
    vals = [(res[model][c][key], c) for c in cols if res[model][c]]
    return max(vals) if vals else (None, None)


out = []
p = out.append
p(f"# cnnbench vs PyTorch on CPU — {E['STAMP']}\n")
p("Made by `tools/pytorch_race.sh`. Images per second, higher is better. Every contender ran "
  f"once in each of {ROUNDS} rounds; a figure is the median over rounds (of each run's median "
  "over its epochs), and a ratio is the median [min–max] over rounds of best cnnbench backend / "
  "best PyTorch contender in that round (named: the contenders best by the medians).\n")
p("## Setup\n")
p(f"* Machine: {E['CPU_MODEL']} (lscpu), {os.cpu_count()} cores, KVM guest.")
train_n = E["TRAIN_LIMIT"] if E["TRAIN_LIMIT"] != "0" else "all"
p(f"* Work: {ROUNDS} rounds; in each, every contender trains {E['EPOCHS']} epochs of the first {train_n}"
  f" Fashion-MNIST training images, evaluation on "
  f"{E['TEST_LIMIT'] if E['TEST_LIMIT'] != '0' else 'all 10,000'} test images at batch 1000 "
  "after every epoch. Batch, optimizer, lr and normalization from `models/<model>.cfg`. "
  "Train img/s = median over the epochs (whole training steps: batch gather, forward, loss, "
  "backward, update; data in memory); infer img/s = median over the evaluation passes.")
p(f"* Threads: 2 for everyone (`cnnbench --threads {E['THREADS']}`, "
  f"`torch.set_num_threads({E['THREADS']})`).")
p(f"* cnnbench: `{shown(E['CNNBENCH'])}` "
  f"({cnb_meta.get('tool', '?')}, {cnb_meta.get('build_type', '?')} build), "
  "run as a user would, in the plain environment (no malloc or OpenBLAS variables added). "
  f"Source tree at the race: `{E['SRC_STATE']}`"
  + (f", with uncommitted changes in {', '.join(f'`{f}`' for f in E['SRC_DIRTY'].split())}"
     if E["SRC_DIRTY"] else "") + " (the binary was built from the tree before the race).")
p(f"* PyTorch (Debian): `{shown(E['PY_DEBIAN'])}`, torch {t_deb.get('version', '?')} "
  f"(package python3-torch {E['DEB_VERSION']}; OpenMP, BLAS = system OpenBLAS, oneDNN 2.6.3).")
p(f"* PyTorch (PyPI): `{shown(E['PY_NEW'])}`, torch {t_new.get('version', 'not available')} "
  "(OpenMP, MKL, oneDNN 3.x; the CUDA build, run on CPU).")
p("* \"as installed\": the plain environment. \"at its best\": plus "
  f"`{E['BEST_ENV']}`.")
env_plain = next((r["raw"].get("environment", {}) for m in models
                  if (r := res[m]["torch-debian-plain"])), {})
p(f"* Plain environment here has: "
  f"{', '.join(f'`{k}={v}`' for k, v in env_plain.items()) or 'nothing of note'}.")
p(f"* OpenBLAS core: cnnbench runs {E['CNB_CORE']} (chosen by {E['CNB_CORE_BY']}); PyTorch at its "
  "best gets the same core, so both sides run OpenBLAS's best kernels for this CPU.")
p(f"* The race took {E['RACE_SECONDS']} s.\n")

for key, title in (("train", "Training"), ("infer", "Inference")):
    p(f"## {title} images/s\n")
    p("| model | " + " | ".join(n for _, n in COLS) + " | best cnnbench / best PyTorch |")
    p("|---|" + "---:|" * (len(COLS) + 1))
    for m in models:
        bc, cc = best(m, CNB, key)
        bt, ct = best(m, TORCH, key)
        rr = round_ratios(m, key)
        ratio = (f"**{statistics.median(rr):.2f}×** [{min(rr):.2f}–{max(rr):.2f}] "
                 f"({cc.split('-')[1]} / {ct[6:]})" if rr else "—")
        p(f"| {m} | " + " | ".join(fmt(res[m][c][key] if res[m][c] else None)
                                    for c, _ in COLS) + f" | {ratio} |")
    p("")

p("## Bars\n")
p("Best cnnbench CPU backend ≥ 2.0× PyTorch at its best for simplecnn training; ≥ 1.5× for "
  "every model, training and inference. \"Best PyTorch\" is the fastest of the four PyTorch "
  "columns; the ratio is the median over rounds.\n")
p("| model | train ratio | bar | met | infer ratio | bar | met |")
p("|---|---:|---:|---|---:|---:|---|")
for m in models:
    cells = []
    for key in ("train", "infer"):
        rr = round_ratios(m, key)
        bar = 2.0 if (m == "simplecnn" and key == "train") else 1.5
        if rr:
            r = statistics.median(rr)
            cells += [f"{r:.2f}×", f"{bar}×", "yes" if r >= bar else "**no**"]
        else:
            cells += ["—", f"{bar}×", "—"]
    p(f"| {m} | " + " | ".join(cells) + " |")
p("")

# The share of the fp32 ceiling: training images/s x the model's FLOP per image (conv and
# linear multiply-adds, from cnnbench's results) over the best backend's sgemm GFLOP/s.
try:
    with open(os.path.join(run_dir, "ceiling.json")) as f:
        ceil = {b["backend"]: b for b in json.load(f)["backends"] if b.get("status") == "ok"}
except (OSError, ValueError, KeyError):
    ceil = {}
if ceil:
    top = max(ceil.values(), key=lambda b: b["gflops_best"])
    cg = top["gflops_best"]
    p("## Share of the fp32 ceiling (training)\n")
    p(f"Ceiling: {cg:.1f} GFLOP/s, the best of `cnnbench ceiling` (each backend's own sgemm, "
      f"2048³, {E['THREADS']} threads; " + ", ".join(
          f"{b['backend']} {b['gflops_best']:.1f} best / {b['gflops_median']:.1f} median"
          for b in ceil.values()) + "). Work per training image: conv and linear multiply-adds, "
      "2 FLOP each (`cnnbench --show-model`); pooling, activations, loss and optimizer add time "
      "but no FLOPs. The FLOPs are those of the direct algorithm: a contender that runs a "
      "convolution by Winograd (cnnbench onednn on 3x3 layers, where it times faster: "
      "`onednn.conv[...]` in its results) does fewer multiplications, so its figure is an "
      "effective rate and its share may exceed what a sum of products could reach. \"Bar "
      "needs\" is the training speed the ratio bar asks for, as a share of the same ceiling.\n")
    p("| model | MFLOP / image | best cnnbench GFLOP/s | share | best PyTorch GFLOP/s | share "
      "| bar needs | share |")
    p("|---|---:|---:|---:|---:|---:|---:|---:|")
    for m in models:
        raw = next((r["raw"] for c in CNB if (r := res[m][c])), None)
        fl = raw["model"].get("train_flop_per_image") if raw else None
        bc, _ = best(m, CNB, "train")
        bt, _ = best(m, TORCH, "train")
        if not fl or not bc or not bt:
            continue
        bar = 2.0 if m == "simplecnn" else 1.5
        g = [v * fl * 1e-9 for v in (bc, bt, bar * bt)]
        p(f"| {m} | {fl * 1e-6:.2f} | " + " | ".join(f"{x:.1f} | {100 * x / cg:.0f}%" for x in g)
          + " |")
    p("")

p("## Sanity: test accuracy after the last epoch (first round)\n")
p("Different initial weights (cnnbench draws its own), same data and settings: these should be "
  "close, not equal.\n")
p("| model | " + " | ".join(n for _, n in COLS) + " |")
p("|---|" + "---:|" * len(COLS))
for m in models:
    p(f"| {m} | " + " | ".join(f"{100 * res[m][c]['acc']:.2f}%" if res[m][c] and
                               res[m][c]["acc"] is not None else "—" for c, _ in COLS) + " |")
p("")

p("## Load on the machine during each run\n")
p("`other cores` = CPU the rest of the machine used while the run ran (busy cores from "
  "/proc/stat minus the run's own CPU time), averaged over the run; on 2 cores anything above "
  f"~0.1 distorts the timing (a run above that is repeated up to {E['RETRIES']} times; the last "
  "attempt's figures are the ones in the tables). `steal` = time the hypervisor gave elsewhere. "
  "`waited` = seconds spent before the run waiting for an idle machine "
  f"(at most {E['QUIET_WAIT']}).\n")
with open(os.path.join(run_dir, "uptime-start.txt")) as f:
    up0 = f.read().strip()
with open(os.path.join(run_dir, "uptime-end.txt")) as f:
    up1 = f.read().strip()
p(f"uptime at start: `{up0}`  \nuptime at end: `{up1}`\n")
failed = [r["run"] for r in loads.values() if r["rc"] != "0"]
if failed:
    p(f"**Failed runs (no figures, see their .log): {', '.join(failed)}.**\n")
busy = [r for r in loads.values() if float(r["other_cpu_cores"]) > 0.1]
if busy:
    p(f"**Warning: {len(busy)} of {len(loads)} runs shared the machine with other work "
      f"(other cores > 0.1) even after retries: {', '.join(r['run'] for r in busy)}. Their "
      "figures can be several times too low (with one core taken, every two-thread barrier "
      "waits for the descheduled thread); ratios involving them are unreliable.**\n")
else:
    p("No run shared the machine with noticeable other work.\n")
p("| run | attempt | waited s | wall s | own CPU s | other cores | steal | loadavg before | exit |")
p("|---|---:|---:|---:|---:|---:|---:|---|---:|")
for r in attempts:
    p(f"| {r['run']} | {r['attempt']} | {r['waited_s']} | {r['elapsed_s']} | "
      f"{r['run_cpu_s']} | {r['other_cpu_cores']} | "
      f"{r['steal_cores']} | {r['loadavg_before']} | {r['rc']} |")
p("")
p(f"Raw results (cnnbench JSON, pytorch_compare JSON, logs): `{run_dir}/`.")
print("\n".join(out))
EOF
echo "pytorch_race: wrote $OUT_DIR/$STAMP.md" >&2
