#!/usr/bin/env bash
# Compresses the reference CNN with every search method under the same
# budget, for several seeds, and prints a Markdown table of medians (test
# split, measured against the uncompressed model in the same run).
# Usage: bench/search_methods.sh [BUDGET] [SEEDS] [TARGET_SIZE] [MIN_RETENTION]
# Reports figures only; it never fails on a time.
set -euo pipefail
cd "$(dirname "$0")/.."
BUDGET=${1:-16}
SEEDS=${2:-"0 1 2"}
TARGET=${3:-0.25}
RETENTION=${4:-0.95}
SHRINK=build/bin/shrink
CACHE=${SHRINK_CACHE:-$HOME/.cache/shrink}
MODEL=$CACHE/reference/cnn-fashion-mnist
OUT=$(mktemp -d /tmp/shrink-bench-XXXXXX)
trap 'rm -rf "$OUT"' EXIT

[ -x "$SHRINK" ] || make build
if [ ! -f "$MODEL/model.safetensors" ]; then
  "$SHRINK" train --arch cnn --data fashion-mnist --out "$MODEL"
fi

for method in uniform random evolution; do
  for seed in $SEEDS; do
    "$SHRINK" compress --model "$MODEL" --task fashion-mnist --target-size "$TARGET" \
      --min-retention "$RETENTION" --budget "$BUDGET" --search "$method" --seed "$seed" \
      --out "$OUT/$method-$seed" --json > "$OUT/$method-$seed.json"
  done
done

python3 - "$OUT" "$BUDGET" "$SEEDS" "$TARGET" "$RETENTION" <<'PY'
import glob, json, statistics, sys
out, budget, seeds, target, retention = sys.argv[1:]
print(f"target size {float(target):.0%}, min retention {float(retention):.0%}, budget {budget}, seeds {seeds}; medians\n")
print("| method | size % | speedup x | retention % | accuracy % | goal met |")
print("|---|---|---|---|---|---|")
rows = {}
for path in sorted(glob.glob(f"{out}/*.json")):
    method = path.rsplit("/", 1)[1].rsplit("-", 1)[0]
    rows.setdefault(method, []).append(json.load(open(path)))
first = next(iter(rows.values()))[0]
print(f"| baseline | 100.0 | 1.00 | 100.0 | {100*first['baseline']['accuracy']:.2f} | - |")
for method in ("uniform", "random", "evolution"):
    r = rows.get(method, [])
    if not r: continue
    med = lambda k: statistics.median(x[k] for x in r)
    met = sum(1 for x in r if x["goal_met"])
    print(f"| {method} | {100*med('size_ratio'):.1f} | {med('speedup'):.2f} | {100*med('retention'):.1f} | "
          f"{100*med('accuracy'):.2f} | {met}/{len(r)} |")
print(f"\nlatency: median of one {32}-example batch, {first['threads']} thread(s) per task, 2 tasks at once")
PY
