#!/usr/bin/env bash
# Installs every Debian package Shrink needs to build, test and run its demo.
# Idempotent: when all packages are present it does nothing (no apt-get update).
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build pkg-config ccache
  libtorch-dev libopenblas0-openmp
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler libonnx-dev
  libabsl-dev prometheus-cpp-dev libcpp-httplib-dev
  libgtest-dev libgmock-dev libsqlite3-dev libssl-dev zlib1g-dev
  clang libclang-rt-14-dev
  nlohmann-json3-dev libyaml-cpp-dev
  prometheus curl openssl
  golang-go golang-github-masterminds-sprig-dev golang-gopkg-yaml.v3-dev yamllint nodejs chromium
  dataset-fashion-mnist fortunes fortunes-min wordnet-base dict-gcide
  python3-grpcio python3-protobuf
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

# npm packages, versions pinned by each folder's package-lock.json, from the npm registry,
# installed once: the Helm chart's schema check (deploy/tools/k8s-validate) and ONNX Runtime
# (worker/runtime/onnxruntime). --ignore-scripts: onnxruntime-node's install script only fetches
# GPU parts (and fails offline); its CPU library ships inside the package.
npm_deps() {
  local root
  root="$(cd "$(dirname "$0")/.." && pwd)"
  command -v npm >/dev/null || { $SUDO apt-get install -y -qq --no-install-recommends npm; }
  if [ ! -d "$root/deploy/tools/k8s-validate/node_modules/kubernetes-models" ]; then
    (cd "$root/deploy/tools/k8s-validate" && npm ci --no-audit --no-fund --loglevel=error)
  fi
  if [ ! -d "$root/worker/runtime/onnxruntime/node_modules/onnxruntime-node" ]; then
    (cd "$root/worker/runtime/onnxruntime" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
  fi
}

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

if [ ${#missing[@]} -eq 0 ]; then
  npm_deps
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
npm_deps
