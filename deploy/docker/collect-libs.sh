#!/usr/bin/env bash
# Copies binaries and every shared library they load (except the C library's own,
# which the runtime image provides) into OUT/bin and OUT/lib, so a slim or non-Debian
# runtime image needs no -dev packages. Usage: collect-libs.sh OUT BINARY...
set -euo pipefail
out=$1
shift
mkdir -p "$out/bin" "$out/lib"
for binary in "$@"; do
  cp "$binary" "$out/bin/"
  ldd "$binary" | awk '/=> \// {print $3}' | while read -r lib; do
    case "$(basename "$lib")" in
      libc.so.*|libm.so.*|libpthread.so.*|libdl.so.*|librt.so.*|ld-linux*|libgcc_s.so.*|libstdc++.so.*) ;;
      libcuda.so.*|libnvidia-*) ;;  # the driver comes from the host via the container toolkit
      *) cp -nL "$lib" "$out/lib/" ;;
    esac
  done
done
