#!/usr/bin/env bash
# Compresses the reference CNN with every search method (uniform, random,
# evolution, ddpg) under the same evaluation budget, for several seeds, and
# prints a Markdown table of medians (test split, measured against the
# uncompressed model in the same run). Also writes an SVG: best reward per
# evaluation per method, and the size-retention point of every candidate
# (read from each job's manifest.json).
# Usage: bench/search_methods.sh [BUDGET] [SEEDS] [TARGET_SIZE] [MIN_RETENTION] [SVG]
# Reports figures only; it never fails on a time.
set -euo pipefail
cd "$(dirname "$0")/.."
BUDGET=${1:-16}
SEEDS=${2:-"0 1 2"}
TARGET=${3:-0.25}
RETENTION=${4:-0.95}
SVG=${5:-bench/search_methods.svg}
METHODS=${METHODS:-"uniform random evolution ddpg"}
SHRINK=build/bin/shrink
CACHE=${SHRINK_CACHE:-$HOME/.cache/shrink}
MODEL=$CACHE/reference/cnn-fashion-mnist
OUT=$(mktemp -d /tmp/shrink-bench-XXXXXX)
trap 'rm -rf "$OUT"' EXIT

[ -x "$SHRINK" ] || make build
if [ ! -f "$MODEL/model.safetensors" ]; then
  "$SHRINK" train --arch cnn --data fashion-mnist --out "$MODEL"
fi

start=$(date +%s)
for method in $METHODS; do
  for seed in $SEEDS; do
    "$SHRINK" compress --model "$MODEL" --task fashion-mnist --target-size "$TARGET" \
      --min-retention "$RETENTION" --budget "$BUDGET" --search "$method" --seed "$seed" \
      --out "$OUT/$method-$seed" --json > "$OUT/$method-$seed.json"
  done
done
elapsed=$(( $(date +%s) - start ))

# shellcheck disable=SC2086
python3 bench/search_plot.py "$OUT" "$SVG" "$TARGET" "$RETENTION" "$BUDGET" "$SEEDS" $METHODS
echo "wall time: ${elapsed} s for $(( $(echo $METHODS | wc -w) * $(echo $SEEDS | wc -w) )) jobs"
