#!/usr/bin/env bash
# Transfer: does a DDPG agent that has searched one reference model reach a good reward on
# another in fewer evaluations than a fresh agent? Runs ddpg on FROM once (budget BUDGET),
# then ddpg on TO per seed twice, fresh and with --init-agent <the FROM job>, all in one
# embedded state folder. Prints the best reward so far after each evaluation (median over
# seeds) and the evaluations each start needs to reach the fresh runs' median final best
# reward (the threshold).
# Usage: bench/transfer.sh [FROM] [TO] [BUDGET] [SEEDS] [TARGET_SIZE] [MIN_RETENTION]
# Env: SLOTS (candidates in flight, default 2), KEEP (folder to keep runs and state in).
# Reports figures only; it never fails on a time.
set -euo pipefail
cd "$(dirname "$0")/.."
FROM=${1:-cnn}
TO=${2:-bert}
BUDGET=${3:-16}
SEEDS=${4:-"0 1"}
TARGET=${5:-0.25}
RETENTION=${6:-0.95}
SLOTS=${SLOTS:-2}
SHRINK=build/bin/shrink
CACHE=${SHRINK_CACHE:-$HOME/.cache/shrink}
[ -x "$SHRINK" ] || make build
# shellcheck source=bench/lib.sh
source bench/lib.sh
use_out_dir

run() {  # name model seed [extra flags...]: one ddpg job into $OUT/name.json (skipped when there)
  local name=$1 model=$2 seed=$3
  shift 3
  [ -f "$OUT/$name.json" ] && return 0
  reference_model "$model"
  rm -rf "$OUT/$name"
  "$SHRINK" compress --model "$MODEL_DIR" --task "$TASK" --target-size "$TARGET" --min-retention "$RETENTION" \
    --budget "$BUDGET" --search ddpg --seed "$seed" --slots "$SLOTS" --state "$OUT/state" \
    --out "$OUT/$name" --json "$@" > "$OUT/$name.json.part"
  mv "$OUT/$name.json.part" "$OUT/$name.json"
}

start=$(date +%s)
run "source-$FROM" "$FROM" 0
source_job=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["job"])' "$OUT/source-$FROM.json")
for seed in $SEEDS; do
  run "fresh-$seed" "$TO" "$seed"
  run "transfer-$seed" "$TO" "$seed" --init-agent "$source_job"
done
elapsed=$(( $(date +%s) - start ))

# shellcheck disable=SC2086
python3 - "$OUT" "$FROM" "$TO" "$BUDGET" $SEEDS <<'PY'
import json, os, statistics, sys
out, source, target, budget, seeds = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5:]

def curve(name):
    """Best reward so far after each evaluation, in the order the candidates were proposed;
    feasible candidates (meeting the goal) first, as the job picks its result."""
    history = json.load(open(os.path.join(out, name, "manifest.json")))["history"]
    seen, points = [], []
    for c in sorted(history, key=lambda c: int(c["id"])):
        if c.get("outcome") == "ok":
            seen.append(c)
        feasible = [x["reward"] for x in seen if x.get("feasible")]
        points.append(max(feasible or [x["reward"] for x in seen]) if seen else None)
    return points

curves = {start: [curve(f"{start}-{s}") for s in seeds] for start in ("fresh", "transfer")}
threshold = statistics.median(c[-1] for c in curves["fresh"])
print(f"ddpg on {target}, fresh vs. started from the agent of a ddpg job on {source}; budget {budget}, "
      f"seeds {' '.join(seeds)}; best reward so far, median over seeds\n")
print("| evaluation | fresh | transferred |")
print("|---:|---:|---:|")
for i in range(budget):
    cells = []
    for start in ("fresh", "transfer"):
        values = [c[i] for c in curves[start] if i < len(c) and c[i] is not None]
        cells.append(f"{statistics.median(values):.3f}" if values else "-")
    print(f"| {i + 1} | {cells[0]} | {cells[1]} |")

def reached(c):
    return next((i + 1 for i, v in enumerate(c) if v is not None and v >= threshold), None)

print(f"\nthreshold: the fresh runs' median final best reward, {threshold:.3f}")
for start in ("fresh", "transfer"):
    counts = [reached(c) for c in curves[start]]
    shown = ", ".join(str(n) if n else "not reached" for n in counts)
    print(f"- {start}: evaluations to reach it per seed: {shown}")
PY
echo "wall time: ${elapsed} s"
