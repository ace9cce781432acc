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

# reference_model NAME sets MODEL_DIR and TASK for a reference model (cnn | bert | gpt2)
# in $CACHE/reference and trains it there when it is missing.
reference_model() {
  case $1 in
    cnn) MODEL_DIR=$CACHE/reference/cnn-fashion-mnist TASK=fashion-mnist ;;
    bert) MODEL_DIR=$CACHE/reference/bert-fortunes-topic TASK=fortunes-topic ;;
    gpt2) MODEL_DIR=$CACHE/reference/gpt2-fortunes-lm TASK=fortunes-lm ;;
    *) echo "model must be cnn, bert or gpt2, not '$1'" >&2; exit 2 ;;
  esac
  if [ ! -f "$MODEL_DIR/model.safetensors" ]; then
    case $1 in
      cnn) "$SHRINK" train --arch cnn --data fashion-mnist --out "$MODEL_DIR" ;;
      *) bash bench/transformers.sh train ;;
    esac
  fi
}
