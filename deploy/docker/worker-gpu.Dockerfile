# shrink-worker for GPU nodes: built against the CUDA LibTorch of a PyTorch 2.x wheel
# (DESIGN.md: found with CMAKE_PREFIX_PATH, SHRINK_WITH_CUDA=ON), run on NVIDIA's CUDA
# runtime image. The NVIDIA container toolkit provides the driver at run time.
# Build from the repository root:
#   docker build -f deploy/docker/worker-gpu.Dockerfile -t shrink/worker-gpu .
# Not built on the development machine (no container engine, no GPU): reviewed, not run.
# The image build downloads the PyTorch wheel from PyTorch's index; nothing is
# downloaded when the worker runs.

ARG TORCH_VERSION=2.3.1
ARG CUDA_TAG=cu121

FROM debian:bookworm AS build
ARG TORCH_VERSION
ARG CUDA_TAG
WORKDIR /src
COPY scripts/install-deps.sh scripts/install-deps.sh
# Debian's build tools and libraries, but not Debian's CPU LibTorch.
RUN bash -c 'sed -n "/^PACKAGES=(/,/^)/p" scripts/install-deps.sh > /tmp/packages.sh && . /tmp/packages.sh && \
      apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3-venv \
      $(printf "%s\n" "${PACKAGES[@]}" | grep -v -E "^(libtorch-dev|prometheus|chromium|fortunes.*|wordnet-base|yamllint|nodejs|golang-.*)$")' \
    && rm -rf /var/lib/apt/lists/*
RUN python3 -m venv /torch && /torch/bin/pip install --no-cache-dir \
      "torch==${TORCH_VERSION}" --index-url "https://download.pytorch.org/whl/${CUDA_TAG}"
COPY . .
RUN cmake -S . -B /build -G Ninja -DCMAKE_BUILD_TYPE=Release -DSHRINK_BUILD_TESTS=OFF -DSHRINK_WITH_CUDA=ON \
      -DCMAKE_PREFIX_PATH="$(/torch/bin/python -c 'import torch; print(torch.utils.cmake_prefix_path)')" \
    && cmake --build /build --target shrink-worker shrink shrink-torch \
    && bash deploy/docker/collect-libs.sh /out /build/bin/shrink-worker /build/bin/shrink /build/bin/shrink-torch

# Ubuntu 24.04's glibc (2.39) runs binaries built on bookworm (2.36); every other
# library the binaries load is copied from the build stage by collect-libs.sh.
FROM nvidia/cuda:12.6.3-cudnn-runtime-ubuntu24.04
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      ca-certificates libgomp1 \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --gid 10001 shrink && useradd --uid 10001 --gid shrink --home /var/cache/shrink --create-home shrink
COPY --from=build /out/ /opt/shrink/
ENV PATH=/opt/shrink/bin:$PATH LD_LIBRARY_PATH=/opt/shrink/lib \
    NVIDIA_VISIBLE_DEVICES=all NVIDIA_DRIVER_CAPABILITIES=compute,utility
USER 10001:10001
EXPOSE 9465
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
  CMD ["shrink", "health", "--metrics", "127.0.0.1:9465"]
ENTRYPOINT ["shrink-worker"]
CMD ["--coordinator", "shrink-coordinator:50051", "--metrics", "0.0.0.0:9465", "--cache", "/var/cache/shrink", "--device", "cuda:0"]
