#!/usr/bin/env bash
# Transformer reference models and base-sized shapes, as BENCHMARKS.md quotes them.
#   bench/transformers.sh train    trains the reference BERT (fortunes-topic) and GPT-2
#                                  (fortunes-lm) into $SHRINK_CACHE/reference and prints
#                                  training time and quality (the CLI's own lines; one
#                                  thread, GPT-2 stops after the epoch that passes 900 s)
#   bench/transformers.sh table    prints a Markdown table: each model fp32 and int8
#                                  (uniform bits 8): params, bytes, accuracy / perplexity,
#                                  median latency of one batch at THREADS threads
# Env: THREADS (default 2). Reports figures only; it never fails on a time.
set -euo pipefail
cd "$(dirname "$0")/.."
SHRINK=build/bin/shrink
CACHE=${SHRINK_CACHE:-$HOME/.cache/shrink}
THREADS=${THREADS:-2}
OUT=$(mktemp -d /tmp/shrink-bench-XXXXXX)
trap 'rm -rf "$OUT"' EXIT
[ -x "$SHRINK" ] || make build

if [ "${1:-table}" = train ]; then
  # One thread: training is deterministic for a seed and a thread count, and BENCHMARKS quotes these runs.
  time "$SHRINK" train --arch bert --data fortunes-topic --out "$CACHE/reference/bert-fortunes-topic" --threads 1
  time "$SHRINK" train --arch gpt2 --data fortunes-lm --out "$CACHE/reference/gpt2-fortunes-lm" --threads 1 \
    --max-seconds 900
  exit 0
fi

echo '{"uniform": {"prune": 0, "bits": 8}}' > "$OUT/int8.json"
"$SHRINK" init --arch bert --preset base --out "$OUT/bert-base" >/dev/null
"$SHRINK" init --arch gpt2 --preset small --out "$OUT/gpt2-small" >/dev/null

echo "| model | weights | params | bytes | quality (test) | latency ms | batch | seq | threads |"
echo "|---|---|---:|---:|---|---:|---:|---:|---:|"
row() {  # name dir task batch seq runs
  local name=$1 dir=$2 task=$3 batch=$4 seq=$5 runs=$6
  "$SHRINK" apply --model "$dir" --policy "$OUT/int8.json" --out "$OUT/$name-int8" --task none \
    --threads "$THREADS" --latency-batch "$batch" --seq-len "$seq" --json > /dev/null
  for variant in fp32 int8; do
    local d=$dir
    [ $variant = int8 ] && d=$OUT/$name-int8
    "$SHRINK" eval --model "$d" --task "$task" --threads "$THREADS" --latency-batch "$batch" --seq-len "$seq" \
      --runs "$runs" --json > "$OUT/e.json"
    python3 - "$name" "$variant" "$seq" "$OUT/e.json" <<'PY'
import json, sys
name, variant, seq, path = sys.argv[1:]
e = json.load(open(path))
q = "-"
if "accuracy" in e: q = "accuracy %.2f%%" % (100 * e["accuracy"])
if "perplexity" in e: q = "perplexity %.2f" % e["perplexity"]
print("| %s | %s | %d | %d | %s | %.1f | %d | %s | %d |" % (name, variant, e["params"], e["bytes"], q,
      e["latency_ms"], e["latency_batch"], seq, e["threads"]))
PY
  done
}
[ -f "$CACHE/reference/bert-fortunes-topic/model.safetensors" ] && row bert-reference "$CACHE/reference/bert-fortunes-topic" fortunes-topic 8 128 15
[ -f "$CACHE/reference/gpt2-fortunes-lm/model.safetensors" ] && row gpt2-reference "$CACHE/reference/gpt2-fortunes-lm" fortunes-lm 8 128 15
row bert-base-shape "$OUT/bert-base" none 1 128 5
row gpt2-small-shape "$OUT/gpt2-small" none 1 128 5
