#!/usr/bin/env bash
# The whole test suite under a sanitizer, on demand (too slow for CI / make test):
# configures a -DSHRINK_SANITIZE build folder, builds the binaries the tests run
# (no benchmarks, no libFuzzer build), runs ctest with scripts/sanitizer-env.sh,
# then fails if any process left a sanitizer report, also the coordinators and
# workers the integration tests start and kill (their reports go to files).
#
# Usage: MODE=address,undefined|thread|address|undefined scripts/sanitize-suite.sh [ctest args...]
#   e.g. MODE=thread scripts/sanitize-suite.sh -R '^(ClusterTest|FaultsTest)\.'
# Env: BUILD_DIR (default build-san-<mode>), JOBS (2), NICE (10),
#      TEST_TIMEOUT (seconds per test, default 3600: tests run several times slower).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
mode="${MODE:-address,undefined}"
build="${BUILD_DIR:-$root/build-san-${mode/,/-}}"
jobs="${JOBS:-2}"
nice_level="${NICE:-10}"
timeout="${TEST_TIMEOUT:-3600}"

# Everything ctest runs: the test binaries, the four programs they start, the
# fuzz targets' corpus replays.
targets=(bin/shrink bin/shrink-torch bin/shrink-coordinator bin/shrink-worker
         bin/common_test bin/agent_test bin/worker_test bin/server_test bin/integration_test
         bin/deploy_test bin/fuzz_policy bin/fuzz_job_file bin/fuzz_safetensors bin/fuzz_wordpiece
         bin/fuzz_byte_bpe bin/fuzz_transformer_config)

start=$(date +%s)
# -O1 -g1 (line tables for the report's stack traces): the ~100 LibTorch-heavy
# translation units compile markedly faster than at -O2 -g.
nice -n "$nice_level" cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g1 -DNDEBUG" -DSHRINK_SANITIZE="$mode" -DSHRINK_LIBFUZZER=OFF \
  -DSHRINK_TEST_TIMEOUT="$timeout" >/dev/null
nice -n "$nice_level" ninja -C "$build" -j "$jobs" "${targets[@]}"
built=$(date +%s)

reports="$build/sanitizer-reports"
rm -rf "$reports"
export SHRINK_SANITIZER_LOG_DIR="$reports"
# shellcheck source=scripts/sanitizer-env.sh
source "$root/scripts/sanitizer-env.sh"
status=0
(cd "$build" && nice -n "$nice_level" ctest -j "$jobs" --timeout "$timeout" --output-on-failure "$@") || status=$?
done_at=$(date +%s)

# Reports of processes whose exit no test checked: the report files, and UBSan
# lines that the gcc runtime prints to stderr (it ignores log_path next to ASan).
found=0
if compgen -G "$reports/*" >/dev/null; then
  found=1
  for f in "$reports"/*; do echo "==== $f"; cat "$f"; done
fi
if grep -nE "runtime error:|ERROR: (Address|Leak|Thread)Sanitizer|WARNING: ThreadSanitizer" \
     "$build/Testing/Temporary/LastTest.log"; then
  found=1
fi
echo "sanitize-suite: MODE=$mode build $((built - start)) s, ctest $((done_at - built)) s, ctest exit $status," \
     "$([[ $found == 0 ]] && echo 'no sanitizer report' || echo 'SANITIZER REPORTS ABOVE')"
[[ $status == 0 && $found == 0 ]]
