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
  libsimdjson-dev         # the canonical event's fast decode path
  prometheus-cpp-dev      # /metrics exposition
  libspdlog-dev           # structured logging
  libcli11-dev            # command line
  libcpp-httplib-dev      # provider simulator's HTTP server
  librocksdb-dev          # the rocksdb contact-state backend (state.backend)
  libmimalloc-dev         # the worker's allocator (CMakeLists.txt: CRMSYNC_MIMALLOC)
  libgtest-dev libgmock-dev
  libclang-rt-14-dev      # libFuzzer and sanitizer runtimes for scripts/fuzz.sh (clang 14)
  # chart checks (tests/helm): Go builds helm (below) and tests/helm/chartcheck
  golang-go golang-gopkg-yaml.v3-dev
  # the kafka test tier (tests/kafka): Apache Kafka's jars, resolved by Maven
  # from tests/kafka/broker/pom.xml, run on Java 17
  default-jdk-headless maven python3
  python3-confluent-kafka python3-requests   # the benchmark's Python baseline worker
  nodejs                  # jscpd (scripts/dup-check.sh), pinned below
)

cache="${CRMSYNC_CACHE:-$HOME/.cache/crmsync}"

# jscpd, the copy-paste detector of scripts/dup-check.sh, from npm at the
# versions scripts/jscpd/package-lock.json pins, into a cache outside the work
# tree keyed by that lock file.
jscpd_dir="$cache/jscpd-$(sha256sum "$(dirname "$0")/jscpd/package-lock.json" | cut -c1-16)"
if [ "${1:-}" = "--jscpd-path" ]; then
  echo "$jscpd_dir/node_modules/.bin/jscpd"
  exit 0
fi
install_jscpd() {
  [ -x "$jscpd_dir/node_modules/.bin/jscpd" ] && return 0
  echo "installing jscpd into $jscpd_dir (once)"
  # Debian's nodejs comes without npm; other builds of nodejs bring their own.
  command -v npm > /dev/null || install_packages npm
  mkdir -p "$jscpd_dir"
  cp "$(dirname "$0")/jscpd/package.json" "$(dirname "$0")/jscpd/package-lock.json" "$jscpd_dir/"
  (cd "$jscpd_dir" && npm ci --no-audit --no-fund --loglevel=error)
}

# helm, built from its Go module at a pinned version into a cache outside the
# work tree (once; a few minutes on two cores). tests/helm/chart_test.sh uses it.
helm_version=v3.22.0
install_helm() {
  local dir="$cache/helm-$helm_version"
  [ -x "$dir/helm" ] && return 0
  local go_bin
  go_bin=$(command -v go || echo /usr/local/go/bin/go)
  [ -x "$go_bin" ] || go_bin=/usr/lib/go/bin/go
  echo "building helm $helm_version into $dir (once)"
  mkdir -p "$dir"
  local attempt
  for attempt in 1 2 3; do
    if GOBIN="$dir" GOFLAGS=-mod=mod "$go_bin" install "helm.sh/helm/v3/cmd/helm@$helm_version"; then
      return 0
    fi
    echo "helm build failed (try $attempt)" >&2
    sleep $((attempt * 5))
  done
  return 1
}

install_packages() {
  echo "installing: $*"
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "$@"
}

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  install_packages "${missing[@]}"
fi
install_helm
install_jscpd
# The broker's jars into ~/.m2 (once; later runs find the cached classpath).
bash "$(dirname "$0")/kafka-broker.sh" classpath >/dev/null
