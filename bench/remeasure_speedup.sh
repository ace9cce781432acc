#!/usr/bin/env bash
# Re-times the compressed models of a search bench run (bench/search_methods.sh with KEEP=DIR)
# against their uncompressed model: ROUNDS rounds, each timing the baseline and then every
# model once (`shrink eval --task none`: RUNS forward passes after warm-up, their median), so
# load drifts hit all of them alike; prints each model's median over rounds and its speedup.
# A job measures its final speedup once, at whatever the load was; this gives a steadier figure.
# RUNTIME=onnxruntime times each model's model.onnx in ONNX Runtime instead (the baseline exported
# once with `shrink export`; the runner's CLI, the same batch shapes: 32 images, 8 x 128 tokens).
# Usage: bench/remeasure_speedup.sh RUN_DIR cnn|bert|bert-deep|bert-lexname|gpt2   Env: THREADS (1), ROUNDS (5), RUNS (15),
# RUNTIME (libtorch | onnxruntime)
# Reports figures only; it never fails on a time.
set -euo pipefail
cd "$(dirname "$0")/.."
RUN_DIR=$1
SHRINK=build/bin/shrink
CACHE=${SHRINK_CACHE:-$HOME/.cache/shrink}
THREADS=${THREADS:-1}
ROUNDS=${ROUNDS:-5}
RUNS=${RUNS:-15}
RUNTIME=${RUNTIME:-libtorch}
# shellcheck source=bench/lib.sh
source bench/lib.sh
reference_model "$2"
models=("$MODEL_DIR")
for dir in "$RUN_DIR"/*/; do
  [ -f "$dir/model.safetensors" ] && models+=("${dir%/}")
done
times=$(mktemp)
work=$(mktemp -d)
trap 'rm -rf "$times" "$work"' EXIT
if [ "$RUNTIME" = onnxruntime ]; then
  "$SHRINK" export --model "$MODEL_DIR" --out "$work/baseline" > /dev/null
fi

# latency_ms MODEL_DIR: the median of RUNS timed passes in $RUNTIME.
latency_ms() {
  if [ "$RUNTIME" = libtorch ]; then
    "$SHRINK" eval --model "$1" --task none --threads "$THREADS" --runs "$RUNS" --json |
      python3 -c 'import json, sys; print(json.load(sys.stdin)["latency_ms"])'
    return
  fi
  local onnx_dir=$1
  [ "$1" = "$MODEL_DIR" ] && onnx_dir=$work/baseline
  # The batch LibTorch's timing uses, from the inputs export.json declares.
  python3 - "$onnx_dir/export.json" "$work/feeds.json" <<'PY'
import json, sys
inputs = json.load(open(sys.argv[1]))["inputs"]
feeds = {}
for i in inputs:
    if i["name"].startswith("past_key_values."):
        sys.exit("RUNTIME=onnxruntime re-times encoders and the CNN, not decoders (their cache inputs)")
    batch = 32 if i["name"] == "images" else 8
    dims = [batch if d == "batch" else 128 if isinstance(d, str) else d for d in i["shape"]]
    count = 1
    for d in dims:
        count *= d
    feeds[i["name"]] = {"type": i["type"], "dims": dims, "values": [1 if i["type"] == "int64" else 0] * count}
json.dump(feeds, open(sys.argv[2], "w"))
PY
  node worker/runtime/onnxruntime/runner.mjs --model "$onnx_dir/model.onnx" --input "$work/feeds.json" \
    --threads "$THREADS" --warmup 3 --repeat "$RUNS" | python3 -c 'import json, sys; print(json.load(sys.stdin)["latency_ms"]["median"])'
}

for _ in $(seq "$ROUNDS"); do
  for model in "${models[@]}"; do
    echo "$model $(latency_ms "$model")" >> "$times"
  done
done
python3 - "$times" "$MODEL_DIR" "$THREADS" "$ROUNDS" "$RUNS" "$RUNTIME" <<'PY'
import collections, os, statistics, sys
path, baseline, threads, rounds, runs, runtime = sys.argv[1:]
by_model = collections.defaultdict(list)
for line in open(path):
    model, ms = line.rsplit(" ", 1)
    by_model[model].append(float(ms))
base = statistics.median(by_model.pop(baseline))
print(f"{runtime}: {rounds} rounds x median of {runs} passes, {threads} thread(s); baseline {base:.2f} ms\n")
print("| model | latency ms (median of rounds) | speedup x | min .. max over rounds |")
print("|---|---:|---:|---|")
for model, values in sorted(by_model.items()):
    median = statistics.median(values)
    print(f"| {os.path.basename(model)} | {median:.2f} | {base / median:.2f} | {min(values):.2f} .. {max(values):.2f} |")
PY
