#!/usr/bin/env bash
# Installs the Debian packages crmsync builds and tests with. Idempotent: apt-get
# runs only when a package is missing.
set -euo pipefail

packages=(
  build-essential cmake make pkg-config ccache clang clang-format
  librdkafka-dev          # Kafka consumer/producer and the mock cluster (rdkafka_mock.h)
  libcurl4-openssl-dev    # HTTP engine (curl multi)
  libssl-dev              # SHA-256 of oversized dead-letter values
  rapidjson-dev           # JSON parsing, writing and JSON Schema validation
  prometheus-cpp-dev      # /metrics exposition
  libspdlog-dev           # structured logging
  libcli11-dev            # command line
  libcpp-httplib-dev      # provider simulator's HTTP server
  libgtest-dev libgmock-dev
  libclang-rt-14-dev      # libFuzzer and sanitizer runtimes for scripts/fuzz.sh (clang 14)
  # chart checks (tests/helm): without helm, scripts/render-chart renders the
  # chart with Go's text/template and sprig, as helm does
  python3-confluent-kafka python3-requests   # the benchmark's Python baseline worker
  golang-go golang-github-masterminds-sprig-dev golang-gopkg-yaml.v3-dev
  golang-github-xeipuuv-gojsonschema-dev   # values.schema.json validation, as helm 3
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "installing: ${missing[*]}"
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
