#!/usr/bin/env bash
# Pretraining throughput and what a short run learns: `shrink pretrain` on the default Debian
# corpus (gcide, wordnet, fortunes) for each architecture at the reference shape, STEPS steps
# of 64 x 128 tokens (default 60), THREADS threads (default 2). Prints a Markdown table:
# parameters, tokens per epoch, tokens/s over the training steps, and the validation figure
# at the end. Run it alone: it is a timing bench.
set -euo pipefail
cd "$(dirname "$0")/.."
SHRINK=${SHRINK:-build/bin/shrink}
STEPS=${STEPS:-60}
THREADS=${THREADS:-2}
source bench/lib.sh
use_out_dir

echo "| arch | params | vocabulary | tokens / epoch | steps | tokens/s | validation (start -> end) |"
echo "|---|---:|---:|---:|---:|---:|---|"
for arch in bert roberta gpt2; do
  "$SHRINK" pretrain --arch "$arch" --steps "$STEPS" --threads "$THREADS" --out "$OUT/$arch" >"$OUT/$arch.out" 2>"$OUT/$arch.err"
  python3 - "$OUT/$arch/pretraining.json" "$arch" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
h = r["history"]
if sys.argv[2] == "gpt2":
    q = f'perplexity {h[0]["validation_perplexity"]:.0f} -> {h[-1]["validation_perplexity"]:.1f}'
else:
    q = (f'masked-token loss {h[0]["validation_loss"]:.2f} -> {h[-1]["validation_loss"]:.2f}, '
         f'accuracy {100 * h[-1]["validation_accuracy"]:.1f}%')
print(f'| {sys.argv[2]} | {r["parameters"]:,} | {r["vocab_learned"]:,} | {r["train_tokens"]:,} | '
      f'{r["total_steps"]} | {r["tokens_per_second_last_invocation"]:,.0f} | {q} |')
PY
done
