#!/usr/bin/env bash
# Applies a fixed set of hand-written policies to a transformer reference model, the way a
# search candidate is measured (validation split, 30 distillation steps), and re-times the
# results together (bench/remeasure_speedup.sh). It answers "is there anything better than
# the uniform recipe for a search to find?": uniform rungs next to the same bytes spent
# unevenly (FFN vs attention, early vs late blocks), wider bits in the blocks with 4-bit
# embeddings, and whole blocks removed.
# Usage: bench/policy_landscape.sh [bert|bert-deep|bert-lexname]   Env: KEEP (folder for the runs),
# THREADS (1), ROUNDS (5), RUNS (15). Reports figures only; it never fails on a time.
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${1:-bert}
SHRINK=build/bin/shrink
CACHE=${SHRINK_CACHE:-$HOME/.cache/shrink}
THREADS=${THREADS:-1}
[ -x "$SHRINK" ] || make build
# shellcheck source=bench/lib.sh
source bench/lib.sh
use_out_dir
bert_reference "$MODEL" policy_landscape.sh  # the policies below name BERT's layers

# One policy file per name in $OUT/policies: 4 bits everywhere unless named otherwise;
# "attention" and "ffn" prune ratios per block (0.9 on both removes the block).
mkdir -p "$OUT/policies"
python3 - "$MODEL_DIR/config.json" "$OUT/policies" <<'PY'
import json, sys
config, out = sys.argv[1:]
blocks = json.load(open(config))["num_hidden_layers"]
half = blocks // 2

def policy(att, ffn, bits=4):
    layers = [{"name": "embeddings", "prune": 0, "bits": 4, "distill": 1}]
    for i in range(blocks):
        for kind, prune in (("attention", att[i]), ("ffn", ffn[i])):
            layers.append({"name": f"encoder.layer.{i}.{kind}", "prune": prune, "bits": bits, "distill": 1})
    layers.append({"name": "head", "prune": 0, "bits": 4, "distill": 1})
    return {"layers": layers}

def each(v):
    return [v] * blocks

def halves(first, second):
    return [first] * half + [second] * (blocks - half)

policies = {
    "uniform-0.75": policy(each(0.75), each(0.75)),
    "uniform-0.80": policy(each(0.8), each(0.8)),
    "uniform-0.85": policy(each(0.85), each(0.85)),
    "ffn-0.90": policy(each(0.85), each(0.9)),
    "ffn-0.90-early": policy(each(0.85), halves(0.9, 0.8)),
    "ffn-0.90-late": policy(each(0.85), halves(0.8, 0.9)),
    "two-heads-ffn-0.90": policy(each(0.5), each(0.9)),
    "int8-blocks-0.80": policy(each(0.8), each(0.8), bits=8),
    "int8-blocks-0.85": policy(each(0.85), each(0.85), bits=8),
    "drop-first-block": policy([0.9] + [0.8] * (blocks - 1), [0.9] + [0.7] * (blocks - 1)),
    "drop-last-block": policy([0.8] * (blocks - 1) + [0.9], [0.7] * (blocks - 1) + [0.9]),
    "drop-late-half": policy(halves(0.75, 0.9), halves(0.5, 0.9)),
}
for name, p in policies.items():
    json.dump(p, open(f"{out}/{name}.json", "w"), indent=1)
PY

for file in "$OUT"/policies/*.json; do
  name=$(basename "$file" .json)
  [ -f "$OUT/$name.json" ] && continue  # KEEP: resume an interrupted run
  "$SHRINK" apply --model "$MODEL_DIR" --policy "$file" --out "$OUT/$name" --task "$TASK" \
    --split validation --distill-steps 30 --threads "$THREADS" --json > "$OUT/$name.json.part"
  mv "$OUT/$name.json.part" "$OUT/$name.json"
done

echo "$MODEL: each policy applied as a search candidate is (validation split, 30 distillation steps)"
echo
echo "| policy | size % | retention % | speedup x (in apply) |"
echo "|---|---:|---:|---:|"
for file in "$OUT"/policies/*.json; do
  name=$(basename "$file" .json)
  python3 -c 'import json, sys; d = json.load(open(sys.argv[1]))
print("| %s | %.2f | %.1f | %.2f |" % (sys.argv[2], 100 * d["size_ratio"], 100 * d["retention"], d["speedup"]))' \
    "$OUT/$name.json" "$name"
done
echo
echo "re-timed together:"
THREADS=$THREADS bash bench/remeasure_speedup.sh "$OUT" "$MODEL"
