# shrink-coordinator (and the shrink CLI, used by the HEALTHCHECK).
# Build from the repository root:
#   docker build -f deploy/docker/coordinator.Dockerfile -t shrink/coordinator .
# Not built on the development machine (it has no container engine): reviewed, not run.

# --- build: the project's own dependency script on Debian bookworm, Release build.
FROM debian:bookworm AS build
WORKDIR /src
COPY scripts/install-deps.sh scripts/install-deps.sh
# Only the Debian packages are needed to build; the npm step of install-deps is for tests.
RUN bash -c 'sed -n "/^PACKAGES=(/,/^)/p" scripts/install-deps.sh > /tmp/packages.sh && . /tmp/packages.sh && \
      apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      $(printf "%s\n" "${PACKAGES[@]}" | grep -v -E "^(prometheus|chromium|dataset-fashion-mnist|fortunes.*|wordnet-base|yamllint|nodejs|golang-.*)$")' \
    && rm -rf /var/lib/apt/lists/*
COPY . .
RUN cmake -S . -B /build -G Ninja -DCMAKE_BUILD_TYPE=Release -DSHRINK_BUILD_TESTS=OFF \
    && cmake --build /build --target shrink-coordinator shrink shrink-torch \
    && bash deploy/docker/collect-libs.sh /out /build/bin/shrink-coordinator /build/bin/shrink /build/bin/shrink-torch

# --- runtime: slim Debian, the binaries and the shared libraries they load.
FROM debian:bookworm-slim
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      ca-certificates libgomp1 \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --gid 10001 shrink && useradd --uid 10001 --gid shrink --home /var/lib/shrink --create-home shrink
COPY --from=build /out/ /opt/shrink/
ENV PATH=/opt/shrink/bin:$PATH LD_LIBRARY_PATH=/opt/shrink/lib
USER 10001:10001
VOLUME /var/lib/shrink
EXPOSE 50051 9464
# The coordinator's gRPC health service (grpc.health.v1), asked by `shrink health`.
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
  CMD ["shrink", "health", "--coordinator", "127.0.0.1:50051"]
ENTRYPOINT ["shrink-coordinator"]
CMD ["--listen", "0.0.0.0:50051", "--metrics", "0.0.0.0:9464", "--state", "/var/lib/shrink"]
