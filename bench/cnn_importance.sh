#!/usr/bin/env bash
# Pruning criteria on the CNN: test accuracy after `shrink apply` of a uniform prune policy (fp32,
# every prunable layer at the same ratio) with --importance magnitude and with --importance
# activation (ranked on the first 128 training images), side by side.
# Env: MODEL (a CNN folder; default: trains one with `shrink train --epochs 1` into a temp folder),
# RATIOS (default "0.25 0.5 0.7 0.8"), DISTILL (distill strengths, default "0"; > 0 distills
# DISTILL_STEPS steps, default 300, in two stages), THREADS (default 1).
# Reports figures only; it never fails on a number.
set -euo pipefail
cd "$(dirname "$0")/.."
SHRINK=build/bin/shrink
RATIOS=${RATIOS:-"0.25 0.5 0.7 0.8"}
DISTILL=${DISTILL:-0}
DISTILL_STEPS=${DISTILL_STEPS:-300}
THREADS=${THREADS:-1}
OUT=$(mktemp -d /tmp/shrink-bench-XXXXXX)
trap 'rm -rf "$OUT"' EXIT
[ -x "$SHRINK" ] || make build
MODEL=${MODEL:-}
if [ -z "$MODEL" ]; then
  MODEL=$OUT/cnn
  "$SHRINK" train --arch cnn --data fashion-mnist --epochs 1 --threads "$THREADS" --out "$MODEL" >&2
fi

accuracy() {  # criterion prune distill -> "accuracy baseline_accuracy"
  echo "{\"uniform\": {\"prune\": $2, \"bits\": 32, \"distill\": $3}}" > "$OUT/policy.json"
  rm -rf "$OUT/c"
  "$SHRINK" apply --model "$MODEL" --policy "$OUT/policy.json" --out "$OUT/c" --task fashion-mnist \
    --importance "$1" --distill-steps "$DISTILL_STEPS" --threads "$THREADS" --json > "$OUT/e.json"
  python3 -c 'import json, sys; e = json.load(open(sys.argv[1])); print(e["accuracy"], e["baseline"]["accuracy"])' "$OUT/e.json"
}

echo "| prune | distill | accuracy % (magnitude) | accuracy % (activation) | activation - magnitude (points) |"
echo "|---:|---:|---:|---:|---:|"
baseline=""
for distill in $DISTILL; do
  for ratio in $RATIOS; do
    read -r magnitude baseline < <(accuracy magnitude "$ratio" "$distill")
    read -r activation _ < <(accuracy activation "$ratio" "$distill")
    python3 -c 'import sys; r, d, m, a = sys.argv[1:]; m, a = float(m), float(a)
print("| %s | %s | %.2f | %.2f | %+.2f |" % (r, d, 100 * m, 100 * a, 100 * (a - m)))' "$ratio" "$distill" "$magnitude" "$activation"
  done
done
python3 -c 'import sys; print("\nuncompressed: %.2f%% (test split)" % (100 * float(sys.argv[1])))' "$baseline"
