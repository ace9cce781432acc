#!/usr/bin/env bash
# The "manual compression" baseline: uniform policies (the same prune ratio and bits
# for every layer) at several operating points, each applied by `shrink apply` and
# measured against the uncompressed model in the same process (size %, speedup x,
# retention %, FLOPs %). Models: the reference CNN / BERT / GPT-2 when they are in
# $SHRINK_CACHE/reference (bench/transformers.sh train, shrink demo), with their
# task (test split; 4..7-bit layers calibrated with GPTQ on the training split);
# base-sized BERT and GPT-2 shapes (random weights: size and latency only).
# Env: THREADS (default 2), POINTS (override the operating points, "prune:bits ..."),
# DISTILL (distill strengths to run each point at, default "0"; 1 = full distillation,
# DISTILL_STEPS steps, default 300, on the task's training split), MODELS (default
# "cnn bert gpt2 bert-base gpt2-small").
# Reports figures only; it never fails on a time.
set -euo pipefail
cd "$(dirname "$0")/.."
SHRINK=build/bin/shrink
CACHE=${SHRINK_CACHE:-$HOME/.cache/shrink}
THREADS=${THREADS:-2}
POINTS=${POINTS:-"0:16 0:8 0:6 0:4 0.25:8 0.5:8 0.25:4 0.5:4"}
DISTILL=${DISTILL:-0}
DISTILL_STEPS=${DISTILL_STEPS:-300}
MODELS=${MODELS:-"cnn bert gpt2 bert-base gpt2-small"}
wanted() { [[ " $MODELS " == *" $1 "* ]]; }
OUT=$(mktemp -d /tmp/shrink-bench-XXXXXX)
trap 'rm -rf "$OUT"' EXIT
[ -x "$SHRINK" ] || make build

echo "| model | prune | bits | distill | size % | params % | FLOPs % | speedup x | retention % | latency ms (fp32 -> compressed) | batch | seq | threads |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|"
row() {  # name dir task batch seq ("-" = not a sequence model)
  local name=$1 dir=$2 task=$3 batch=$4 seq=$5
  for point in $POINTS; do
   for distill in $DISTILL; do
    local prune=${point%%:*} bits=${point##*:}
    [ "$task" = none ] && [ "$distill" != 0 ] && continue  # nothing to distill on
    echo "{\"uniform\": {\"prune\": $prune, \"bits\": $bits, \"distill\": $distill}}" > "$OUT/policy.json"
    rm -rf "$OUT/c"
    if ! "$SHRINK" apply --model "$dir" --policy "$OUT/policy.json" --out "$OUT/c" --task "$task" \
        --distill-steps "$DISTILL_STEPS" --threads "$THREADS" --latency-batch "$batch" --seq-len "${seq/-/128}" \
        --json > "$OUT/e.json" 2> "$OUT/err"; then
      echo "| $name | $prune | $bits | $distill | failed: $(tr '\n' ' ' < "$OUT/err" | cut -c1-80) |"
      continue
    fi
    python3 - "$name" "$prune" "$bits" "$distill" "$task" "$batch" "$seq" "$OUT/e.json" <<'PY'
import json, sys
name, prune, bits, distill, task, batch, seq, path = sys.argv[1:]
e = json.load(open(path))
retention = "-" if task == "none" else "%.1f" % (100 * e["retention"])
print("| %s | %s | %s | %s | %.1f | %.1f | %.1f | %.2f | %s | %.1f -> %.1f | %s | %s | %d |" % (
    name, prune, bits, distill, 100 * e["size_ratio"], 100 * e.get("params_ratio", 0), 100 * e["flops_ratio"],
    e["speedup"], retention, e["baseline"]["latency_ms"], e["latency_ms"], batch, seq, e["threads"]))
PY
   done
  done
}
CNN=$CACHE/reference/cnn-fashion-mnist
wanted cnn && [ -f "$CNN/model.safetensors" ] && row cnn-reference "$CNN" fashion-mnist 32 -
wanted bert && [ -f "$CACHE/reference/bert-fortunes-topic/model.safetensors" ] && \
  row bert-reference "$CACHE/reference/bert-fortunes-topic" fortunes-topic 8 128
wanted gpt2 && [ -f "$CACHE/reference/gpt2-fortunes-lm/model.safetensors" ] && \
  row gpt2-reference "$CACHE/reference/gpt2-fortunes-lm" fortunes-lm 8 128
if wanted bert-base; then
  "$SHRINK" init --arch bert --preset base --out "$OUT/bert-base" >/dev/null
  row bert-base-shape "$OUT/bert-base" none 1 128
  rm -rf "$OUT/bert-base"
fi
if wanted gpt2-small; then
  "$SHRINK" init --arch gpt2 --preset small --out "$OUT/gpt2-small" >/dev/null
  row gpt2-small-shape "$OUT/gpt2-small" none 1 128
fi
