#!/usr/bin/env bash
# The coordinator's torch-free storage core (JobStore, CommitQueue: the group
# commit's threads) and its tests, built with clang under ThreadSanitizer and
# under AddressSanitizer + UBSan, each run a few times. A quick stand-in for the
# whole suite under SHRINK_SANITIZE, whose LibTorch build takes far longer.
# Usage: scripts/sanitize-core.sh [OUT_DIR]   (default /tmp/shrink-sanitize-core)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="${1:-/tmp/shrink-sanitize-core}"
mkdir -p "$out/gen"
protoc --proto_path="$root/proto" --cpp_out="$out/gen" "$root/proto/shrink/v1/types.proto"
sources=("$root/server/storage/commit_queue.cc" "$root/server/storage/job_store.cc" "$root/common/files.cc"
         "$root/common/status.cc" "$out/gen/shrink/v1/types.pb.cc"
         "$root/tests/server/commit_queue_test.cc" "$root/tests/server/job_store_test.cc")
libs=(-lgmock -lgtest_main -lgtest -lsqlite3 -lprotobuf -lgrpc++ -lgpr
      $(pkg-config --libs absl_status absl_statusor absl_strings absl_str_format absl_time absl_synchronization)
      -lpthread)
source "$root/scripts/sanitizer-env.sh"
for kind in thread address,undefined; do
  dir="$out/${kind/,/-}"
  mkdir -p "$dir"
  flags=(-fsanitize="$kind" -fno-sanitize-recover=all -fno-omit-frame-pointer -O1 -g)
  objects=()
  for s in "${sources[@]}"; do
    o="$dir/$(basename "$s").o"
    clang++ -std=c++17 "${flags[@]}" -I"$root" -I"$out/gen" -c "$s" -o "$o"
    objects+=("$o")
  done
  clang++ "${flags[@]}" "${objects[@]}" -o "$dir/store_test" "${libs[@]}"
  echo "== -fsanitize=$kind"
  "$dir/store_test" --gtest_repeat=3 --gtest_brief=1
done
