#!/usr/bin/env bash
# Load bench: a real shrink-coordinator, 1..256 simulated workers
# (`shrink-worker --simulate`, 32 workers per process), 50 clients that keep
# submitting and watching jobs. Prints the Markdown table quoted in
# BENCHMARKS.md. Usage: bench/load.sh [extra bench_load flags, e.g. --seconds 20]
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x build/bin/bench_load ] || { cmake -S . -B build -G Ninja >/dev/null && ninja -C build bench_load shrink-coordinator shrink-worker; }
exec build/bin/bench_load --bin build/bin "$@"
