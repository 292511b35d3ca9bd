# syntax=docker/dockerfile:1
# crmsync worker image: build on Debian bookworm, run on bookworm-slim with only
# the shared libraries the binary links, as a non-root numeric user.
#
#   docker build -t crmsync:0.1.0 .
#   docker run --rm -v $PWD/my-config.json:/etc/crmsync/config.json:ro \
#     -e REPLIFY_API_KEY=... -p 9464:9464 crmsync:0.1.0
#
# The schemas and the example config are compiled into the binary.

ARG DEBIAN_RELEASE=bookworm

FROM debian:${DEBIAN_RELEASE}-slim AS build
# The libraries the build links. scripts/install-deps.sh also brings in the
# tooling of the test tiers (clang for the fuzz build, Go for the chart
# checks), which the image does not need. GoogleTest is here only because the
# CMake project configures its tests.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      build-essential cmake make pkg-config \
      librdkafka-dev libcurl4-openssl-dev rapidjson-dev prometheus-cpp-dev \
      libspdlog-dev libcli11-dev libcpp-httplib-dev librocksdb-dev libmimalloc-dev libsimdjson-dev \
      libgtest-dev libgmock-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cmake -S . -B /build -DCMAKE_BUILD_TYPE=Release \
 && cmake --build /build -j"$(nproc)" --target crmsync \
 && strip /build/crmsync \
 && /build/crmsync --help >/dev/null

FROM debian:${DEBIAN_RELEASE}-slim
# Runtime libraries of the binary (ldd build/crmsync), and CA certificates for
# the providers' HTTPS APIs and TLS brokers.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      ca-certificates \
      librdkafka1 libcurl4 \
      libprometheus-cpp-core1.0 libprometheus-cpp-pull1.0 \
      libspdlog1.10 libfmt9 libcpp-httplib0.11 librocksdb7.8 libmimalloc2.0 libsimdjson14 \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 crmsync \
 && useradd --system --uid 10001 --gid 10001 --no-create-home \
      --home-dir /nonexistent --shell /usr/sbin/nologin crmsync \
 && mkdir -p /etc/crmsync
COPY --from=build /build/crmsync /usr/local/bin/crmsync
# For reference only (crmsync reads its compiled-in copy); root-owned, so
# read-only for the runtime user.
COPY --from=build /src/schemas/ /usr/share/crmsync/schemas/
COPY --from=build /src/examples/crmsync.json /usr/share/crmsync/examples/crmsync.json

LABEL org.opencontainers.image.title="crmsync" \
      org.opencontainers.image.description="Kafka consumer worker that keeps outreach providers in step with a CRM"
USER 10001:10001
# /metrics, /healthz and /readyz (worker.metrics.listen).
EXPOSE 9464
# SIGTERM drains in-flight deliveries within worker.drainTimeoutMs, commits
# and leaves the consumer group.
STOPSIGNAL SIGTERM
ENTRYPOINT ["crmsync"]
CMD ["run", "--config", "/etc/crmsync/config.json"]
