# Sourced by the benches (after setting SHRINK and CACHE).

# Sets OUT to the folder the runs go to: $KEEP when set (kept, so an interrupted bench
# resumes), else a temporary folder removed on exit.
use_out_dir() {
  if [ -n "${KEEP:-}" ]; then
    OUT=$KEEP
    mkdir -p "$OUT"
  else
    OUT=$(mktemp -d /tmp/shrink-bench-XXXXXX)
    trap 'rm -rf "$OUT"' EXIT
  fi
}

# reference_model NAME sets MODEL_DIR and TASK for a reference model (cnn | bert | bert-deep
# | bert-lexname | gpt2) in $CACHE/reference and trains it there when it is missing. bert-deep
# is the reference BERT with 8 blocks instead of 4 (for benches that ask whether depth
# matters); bert-lexname is that shape trained on the larger task, wordnet-lexname.
reference_model() {
  case $1 in
    cnn) MODEL_DIR=$CACHE/reference/cnn-fashion-mnist TASK=fashion-mnist ;;
    bert) MODEL_DIR=$CACHE/reference/bert-fortunes-topic TASK=fortunes-topic ;;
    bert-deep) MODEL_DIR=$CACHE/reference/bert-deep-fortunes-topic TASK=fortunes-topic ;;
    bert-lexname) MODEL_DIR=$CACHE/reference/bert-deep-wordnet-lexname TASK=wordnet-lexname ;;
    gpt2) MODEL_DIR=$CACHE/reference/gpt2-fortunes-lm TASK=fortunes-lm ;;
    *) echo "model must be cnn, bert, bert-deep, bert-lexname or gpt2, not '$1'" >&2; exit 2 ;;
  esac
  if [ ! -f "$MODEL_DIR/model.safetensors" ]; then
    case $1 in
      cnn) "$SHRINK" train --arch cnn --data fashion-mnist --out "$MODEL_DIR" ;;
      bert-deep) "$SHRINK" train --arch bert --preset deep --data fortunes-topic --out "$MODEL_DIR" --threads 1 ;;
      bert-lexname) "$SHRINK" train --arch bert --preset deep --data wordnet-lexname --epochs 3 --out "$MODEL_DIR" --threads 1 ;;
      *) bash bench/transformers.sh train ;;
    esac
  fi
}

# bert_reference NAME SCRIPT: reference_model for a benchmark whose policies name BERT's
# layers; any other NAME is refused in SCRIPT's name.
bert_reference() {
  case $1 in
    bert | bert-deep | bert-lexname) reference_model "$1" ;;
    *) echo "$2: the model must be bert, bert-deep or bert-lexname, not '$1'" >&2; exit 2 ;;
  esac
}
