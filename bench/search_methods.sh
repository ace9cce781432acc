#!/usr/bin/env bash
# Compresses a reference model (MODEL=cnn|bert|bert-deep|bert-lexname|gpt2, default cnn) with every
# search method (uniform, random, evolution, ddpg) under the same evaluation
# budget, for several seeds, and
# prints a Markdown table of medians (test split, measured against the
# uncompressed model in the same run). Also writes an SVG: best reward per
# evaluation per method, and the size-retention point of every candidate
# (read from each job's manifest.json).
# Usage: bench/search_methods.sh [BUDGET] [SEEDS] [TARGET_SIZE] [MIN_RETENTION] [SVG]
# Env: MODEL (cnn | bert | bert-deep | bert-lexname | gpt2), METHODS, SLOTS (candidates in flight, default 2),
# RUNTIME (libtorch | onnxruntime, default libtorch: where every latency is measured),
# KEEP (a folder to keep the runs in: results, manifests and compressed models).
# Reports figures only; it never fails on a time.
set -euo pipefail
cd "$(dirname "$0")/.."
BUDGET=${1:-16}
SEEDS=${2:-"0 1 2"}
TARGET=${3:-0.25}
RETENTION=${4:-0.95}
METHODS=${METHODS:-"uniform random evolution ddpg"}
SLOTS=${SLOTS:-2}
SHRINK=build/bin/shrink
CACHE=${SHRINK_CACHE:-$HOME/.cache/shrink}
MODEL=${MODEL:-cnn}
RUNTIME=${RUNTIME:-libtorch}
SVG=${5:-bench/search_methods-$MODEL$([ "$RUNTIME" = libtorch ] || echo "-$RUNTIME").svg}

[ -x "$SHRINK" ] || make build
# shellcheck source=bench/lib.sh
source bench/lib.sh
use_out_dir
reference_model "$MODEL"

start=$(date +%s)
for method in $METHODS; do
  for seed in $SEEDS; do
    [ -f "$OUT/$method-$seed.json" ] && continue  # KEEP: resume an interrupted run
    rm -rf "$OUT/$method-$seed"
    "$SHRINK" compress --model "$MODEL_DIR" --task "$TASK" --target-size "$TARGET" \
      --min-retention "$RETENTION" --budget "$BUDGET" --search "$method" --seed "$seed" \
      --runtime "$RUNTIME" --slots "$SLOTS" --out "$OUT/$method-$seed" --json > "$OUT/$method-$seed.json.part"
    mv "$OUT/$method-$seed.json.part" "$OUT/$method-$seed.json"
  done
done
elapsed=$(( $(date +%s) - start ))

# shellcheck disable=SC2086
python3 bench/search_plot.py "$OUT" "$SVG" "$TARGET" "$RETENTION" "$BUDGET" "$SEEDS" $METHODS
echo "wall time: ${elapsed} s for $(( $(echo $METHODS | wc -w) * $(echo $SEEDS | wc -w) )) jobs"
