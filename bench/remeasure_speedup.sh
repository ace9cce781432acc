#!/usr/bin/env bash
# Re-times the compressed models of a search bench run (bench/search_methods.sh with KEEP=DIR)
# against their uncompressed model: ROUNDS rounds, each timing the baseline and then every
# model once (`shrink eval --task none`: RUNS forward passes after warm-up, their median), so
# load drifts hit all of them alike; prints each model's median over rounds and its speedup.
# A job measures its final speedup once, at whatever the load was; this gives a steadier figure.
# Usage: bench/remeasure_speedup.sh RUN_DIR cnn|bert|bert-deep|gpt2   Env: THREADS (1), ROUNDS (5), RUNS (15)
# Reports figures only; it never fails on a time.
set -euo pipefail
cd "$(dirname "$0")/.."
RUN_DIR=$1
SHRINK=build/bin/shrink
CACHE=${SHRINK_CACHE:-$HOME/.cache/shrink}
THREADS=${THREADS:-1}
ROUNDS=${ROUNDS:-5}
RUNS=${RUNS:-15}
# shellcheck source=bench/lib.sh
source bench/lib.sh
reference_model "$2"
models=("$MODEL_DIR")
for dir in "$RUN_DIR"/*/; do
  [ -f "$dir/model.safetensors" ] && models+=("${dir%/}")
done
times=$(mktemp)
trap 'rm -f "$times"' EXIT
for _ in $(seq "$ROUNDS"); do
  for model in "${models[@]}"; do
    ms=$("$SHRINK" eval --model "$model" --task none --threads "$THREADS" --runs "$RUNS" --json |
      python3 -c 'import json, sys; print(json.load(sys.stdin)["latency_ms"])')
    echo "$model $ms" >> "$times"
  done
done
python3 - "$times" "$MODEL_DIR" "$THREADS" "$ROUNDS" "$RUNS" <<'PY'
import collections, os, statistics, sys
path, baseline, threads, rounds, runs = sys.argv[1:]
by_model = collections.defaultdict(list)
for line in open(path):
    model, ms = line.rsplit(" ", 1)
    by_model[model].append(float(ms))
base = statistics.median(by_model.pop(baseline))
print(f"{rounds} rounds x median of {runs} passes, {threads} thread(s); baseline {base:.2f} ms\n")
print("| model | latency ms (median of rounds) | speedup x | min .. max over rounds |")
print("|---|---:|---:|---|")
for model, values in sorted(by_model.items()):
    median = statistics.median(values)
    print(f"| {os.path.basename(model)} | {median:.2f} | {base / median:.2f} | {min(values):.2f} .. {max(values):.2f} |")
PY
