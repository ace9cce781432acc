# shrink-worker for CPU nodes (Debian's LibTorch with OpenBLAS/OpenMP), on slim Debian.
# Build from the repository root:
#   docker build -f deploy/docker/worker-cpu.Dockerfile -t shrink/worker-cpu .
# Not built on the development machine (it has no container engine): reviewed, not run.

FROM debian:bookworm AS build
WORKDIR /src
COPY scripts/install-deps.sh scripts/install-deps.sh
RUN bash -c 'sed -n "/^PACKAGES=(/,/^)/p" scripts/install-deps.sh > /tmp/packages.sh && . /tmp/packages.sh && \
      apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      npm $(printf "%s\n" "${PACKAGES[@]}" | grep -v -E "^(prometheus|chromium|fortunes.*|wordnet-base|yamllint|golang-.*)$")' \
    && rm -rf /var/lib/apt/lists/*
COPY . .
RUN cmake -S . -B /build -G Ninja -DCMAKE_BUILD_TYPE=Release -DSHRINK_BUILD_TESTS=OFF \
    && cmake --build /build --target shrink-worker shrink shrink-torch \
    && bash deploy/docker/collect-libs.sh /out /build/bin/shrink-worker /build/bin/shrink /build/bin/shrink-torch
# ONNX Runtime (onnxruntime-node, pinned by its lock file; --ignore-scripts: its install script only
# fetches GPU parts) and its runner, where OnnxRuntimeRunnerPath() looks: bin/../share/shrink/onnxruntime.
RUN cd worker/runtime/onnxruntime && npm ci --ignore-scripts --omit=dev --no-audit --no-fund \
    && mkdir -p /out/share/shrink/onnxruntime \
    && cp -r runner.mjs package.json node_modules /out/share/shrink/onnxruntime/

FROM debian:bookworm-slim
# libopenblas0-openmp: without it LibTorch falls back to reference BLAS (~25x slower).
# nodejs: runs ONNX Runtime (`shrink predict --runtime onnxruntime`, the exported model's checks).
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      ca-certificates libgomp1 libopenblas0-openmp nodejs \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --gid 10001 shrink && useradd --uid 10001 --gid shrink --home /var/cache/shrink --create-home shrink
COPY --from=build /out/ /opt/shrink/
ENV PATH=/opt/shrink/bin:$PATH LD_LIBRARY_PATH=/opt/shrink/lib
USER 10001:10001
EXPOSE 9465
# A worker serves no gRPC; its metrics server answers /healthz while it runs.
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
  CMD ["shrink", "health", "--metrics", "127.0.0.1:9465"]
ENTRYPOINT ["shrink-worker"]
CMD ["--coordinator", "shrink-coordinator:50051", "--metrics", "0.0.0.0:9465", "--cache", "/var/cache/shrink", "--device", "cpu"]
