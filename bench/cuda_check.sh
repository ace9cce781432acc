#!/usr/bin/env bash
# The GPU check behind BENCHMARKS.md's "CUDA" section: builds Shrink against the CUDA
# LibTorch of the machine's PyTorch (found through torch.utils.cmake_prefix_path), then on
# cuda:0 runs worker_test's device tests and bench_cuda_check (compressed files identical on
# CPU and GPU, logits agree, fp32 vs fp16 / int8 / 4-bit latency of the BERT-base and
# GPT-2-small shapes). Never needed for CI; takes a few minutes on a 16-core GPU machine.
#
#   bench/cuda_check.sh [--debs DIR] [--build DIR] [--prefix DIR] [--load "BENCH_LOAD FLAGS"] [--load-only]
#
# --load FLAGS: first also builds shrink-coordinator and bench_load and runs the load bench
#   (bench/load.sh's bench_load with FLAGS) on that machine's many idle cores, before the GPU
#   checks: the coordinator's dispatch tail measured without 2 shared cores in the way.
# --load-only: stops after the load bench (no GPU needed).
#
# --debs DIR: a GPU machine without the project's Debian dependencies (gRPC, protobuf,
#   abseil, ...): DIR holds the bookworm .deb files listed in bench/cuda_check_debs.txt
#   (here: `cd DIR && apt-get download $(cat bench/cuda_check_debs.txt)`). They are unpacked
#   into --prefix (default /opt/shrink-debs; never into /) and found through
#   CMAKE_PREFIX_PATH, pkg-config's sysroot and LD_LIBRARY_PATH.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
debs="" build=/tmp/shrink-cuda-build prefix=/opt/shrink-debs load="" load_only=0
while [ $# -gt 0 ]; do
  case "$1" in
    --debs) debs=$2; shift 2 ;;
    --build) build=$2; shift 2 ;;
    --prefix) prefix=$2; shift 2 ;;
    --load) load=$2; shift 2 ;;
    --load-only) load_only=1; shift ;;
    *) echo "usage: bench/cuda_check.sh [--debs DIR] [--build DIR] [--prefix DIR] [--load FLAGS] [--load-only]" >&2; exit 2 ;;
  esac
done

echo "== machine"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "gpu", torch.cuda.get_device_name(0) if torch.cuda.is_available() else None, "tf32 matmul", torch.backends.cuda.matmul.allow_tf32, "tf32 cudnn", torch.backends.cudnn.allow_tf32)'
g++ --version | head -1; cmake --version | head -1; nproc

torch_prefix=$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)')
prefix_path=$torch_prefix
if [ -n "$debs" ]; then
  mkdir -p "$prefix"
  for f in "$debs"/*.deb; do dpkg -x "$f" "$prefix"; done
  # Absolute links (libz.so -> /lib/...) point into the prefix instead.
  find "$prefix" -type l -lname '/*' | while read -r link; do
    target=$(readlink "$link")
    if [ -e "$prefix$target" ]; then ln -sf "$prefix$target" "$link"; fi
  done
  export LD_LIBRARY_PATH=$prefix/usr/lib/x86_64-linux-gnu:$prefix/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}
  export PATH=$prefix/usr/bin:$PATH
  export PKG_CONFIG_LIBDIR=$prefix/usr/lib/x86_64-linux-gnu/pkgconfig:$prefix/usr/share/pkgconfig
  export PKG_CONFIG_SYSROOT_DIR=$prefix
  prefix_path="$prefix/usr;$torch_prefix"
fi
# The CUDA libraries of pip's torch live in site-packages/nvidia/*/lib.
site=$(python3 -c 'import os, torch; print(os.path.dirname(os.path.dirname(torch.__file__)))')
for d in "$site"/nvidia/*/lib "$site"/torch/lib; do [ -d "$d" ] && LD_LIBRARY_PATH=$d:${LD_LIBRARY_PATH:-}; done
export LD_LIBRARY_PATH

echo "== configure"
cuda_hints=()
if command -v nvcc >/dev/null; then
  cuda_root=$(dirname "$(dirname "$(readlink -f "$(command -v nvcc)")")")
  cuda_hints=(-DCUDAToolkit_ROOT="$cuda_root" -DCMAKE_CUDA_COMPILER="$(command -v nvcc)")
fi
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$prefix_path" \
  -DSHRINK_LIBFUZZER=OFF -DCMAKE_CXX_COMPILER_LAUNCHER= "${cuda_hints[@]}" >"$build.configure.log" 2>&1 || {
  tail -60 "$build.configure.log"; exit 1; }
grep -E "^(Torch_DIR|CUDAToolkit_ROOT|gRPC_DIR)" "$build/CMakeCache.txt" || true

status=0
if [ -n "$load" ]; then
  echo "== build (load bench)"
  ninja -C "$build" -j"$(nproc)" shrink-coordinator shrink-worker bench_load || status=$?
  echo "== load bench: bench_load $load (load average before: $(cut -d' ' -f1-3 /proc/loadavg))"
  # shellcheck disable=SC2086
  [ $status -eq 0 ] && { "$build/bin/bench_load" --bin "$build/bin" $load || status=$?; }
  [ $load_only -eq 1 ] && exit $status
fi

echo "== build"
# -k 0: every compile error at once; whatever did build still runs below.
ninja -C "$build" -j"$(nproc)" -k 0 shrink-worker bench_cuda_check worker_test || status=$?

echo "== shrink-worker --device"
if [ -x "$build/bin/shrink-worker" ]; then
  "$build/bin/shrink-worker" --coordinator 127.0.0.1:1 --device cuda:99 && status=1 || echo "(refused, as it should be)"
fi

echo "== bench_cuda_check"
[ -x "$build/bin/bench_cuda_check" ] && { "$build/bin/bench_cuda_check" --device cuda:0 || status=$?; }

echo "== device tests (worker_test)"
[ -x "$build/bin/worker_test" ] && { "$build/bin/worker_test" --gtest_filter='DeviceTest.*' || status=$?; }
exit $status
