#!/usr/bin/env bash
# How unevenly a transformer's blocks carry the task: for each encoder block i, one policy that
# changes only that block (the rest stay fp32 and unpruned) — remove block i, prune 75% of its
# heads, or store it in 4 bits — applied with `shrink apply` and scored on the validation split.
# Prints retention per block and probe, and each probe's spread (max - min) and standard
# deviation across blocks: a flat model has small spreads, and then no per-layer search can beat
# one uniform ratio.
# Usage: bench/block_sensitivity.sh [bert|bert-deep|bert-lexname]   Env: KEEP (folder for the
# runs), THREADS (1), DISTILL_STEPS (0: the damage itself, before any recovery).
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${1:-bert}
SHRINK=build/bin/shrink
CACHE=${SHRINK_CACHE:-$HOME/.cache/shrink}
THREADS=${THREADS:-1}
DISTILL_STEPS=${DISTILL_STEPS:-0}
[ -x "$SHRINK" ] || make build
# shellcheck source=bench/lib.sh
source bench/lib.sh
use_out_dir
bert_reference "$MODEL" block_sensitivity.sh  # the policies below name BERT's layers

# One policy file per (probe, block) in $OUT/policies, named PROBE-I.json.
mkdir -p "$OUT/policies"
python3 - "$MODEL_DIR/config.json" "$OUT/policies" "$DISTILL_STEPS" <<'PY'
import json, sys
config, out, distill_steps = sys.argv[1:]
blocks = json.load(open(config))["num_hidden_layers"]
distill = 1 if int(distill_steps) > 0 else 0
probes = {  # probe -> (attention prune, ffn prune, bits) of the probed block
    "remove": (0.9, 0.9, 32),  # 0.9 on both removes the block
    "heads75": (0.75, 0, 32),
    "bits4": (0, 0, 4),
}
for probe, (att, ffn, bits) in probes.items():
    for i in range(blocks):
        layers = [{"name": "embeddings", "prune": 0, "bits": 32, "distill": distill}]
        for j in range(blocks):
            hit = i == j
            layers.append({"name": f"encoder.layer.{j}.attention", "prune": att if hit else 0,
                           "bits": bits if hit else 32, "distill": distill})
            layers.append({"name": f"encoder.layer.{j}.ffn", "prune": ffn if hit else 0,
                           "bits": bits if hit else 32, "distill": distill})
        layers.append({"name": "head", "prune": 0, "bits": 32, "distill": distill})
        json.dump({"layers": layers}, open(f"{out}/{probe}-{i}.json", "w"), indent=1)
PY

# Latency is not what this bench asks, so every timed pass is small (1 sequence of 16 tokens).
# A policy that neither distills nor quantizes with GPTQ (which calibrates on the task's data)
# is only written by `shrink apply` and scored by `shrink eval`, so the baseline is not scored
# again beside it.
small_timing=(--threads "$THREADS" --latency-batch 1 --seq-len 16)
score() {  # score MODEL_DIR OUT_JSON: accuracy on the validation split
  "$SHRINK" eval --model "$1" --task "$TASK" --split validation --runs 1 "${small_timing[@]}" --json > "$2.part"
  mv "$2.part" "$2"
}
[ -f "$OUT/baseline.json" ] || score "$MODEL_DIR" "$OUT/baseline.json"
for file in "$OUT"/policies/*.json; do
  name=$(basename "$file" .json)
  [ -f "$OUT/$name.json" ] && continue  # KEEP: resume an interrupted run
  if [ "$DISTILL_STEPS" -gt 0 ] || [[ $name == bits4-* ]]; then
    "$SHRINK" apply --model "$MODEL_DIR" --policy "$file" --out "$OUT/$name" --task "$TASK" \
      --split validation --distill-steps "$DISTILL_STEPS" "${small_timing[@]}" --json > "$OUT/$name.json.part"
    mv "$OUT/$name.json.part" "$OUT/$name.json"
  else
    "$SHRINK" apply --model "$MODEL_DIR" --policy "$file" --out "$OUT/$name" "${small_timing[@]}" > /dev/null
    score "$OUT/$name" "$OUT/$name.json"
  fi
  rm -rf "${OUT:?}/$name"  # the model itself is not needed
done

python3 - "$OUT" "$MODEL" "$MODEL_DIR/config.json" "$DISTILL_STEPS" <<'PY'
import json, statistics, sys
out, model, config, distill_steps = sys.argv[1:]
blocks = json.load(open(config))["num_hidden_layers"]
probes = [("remove", "block removed"), ("heads75", "75% of its heads pruned"), ("bits4", "4-bit only")]
base = json.load(open(f"{out}/baseline.json"))["accuracy"]
r = {p: [100 * json.load(open(f"{out}/{p}-{i}.json"))["accuracy"] / base for i in range(blocks)] for p, _ in probes}
print(f"{model} ({blocks} blocks, accuracy {100 * base:.2f}% on the validation split): "
      f"retention % with only block i changed, {distill_steps} distillation steps")
print()
print("| block | " + " | ".join(label for _, label in probes) + " |")
print("|---|" + "---:|" * len(probes))
for i in range(blocks):
    print(f"| {i} | " + " | ".join(f"{r[p][i]:.1f}" for p, _ in probes) + " |")
print("| spread (max - min) | " + " | ".join(f"{max(r[p]) - min(r[p]):.1f}" for p, _ in probes) + " |")
print("| standard deviation | " + " | ".join(f"{statistics.pstdev(r[p]):.1f}" for p, _ in probes) + " |")
PY
