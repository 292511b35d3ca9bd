#!/usr/bin/env bash
# Chart checks (CTest label `chart`): `helm lint --strict` and `helm template`
# of helm/crmsync with real helm (the pinned build scripts/install-deps.sh
# makes from the Go module, or $CRMSYNC_HELM, or helm on PATH), then checks
# the output with tests/helm/chartcheck, including `crmsync check-config` on
# the rendered config. Negative cases must fail to render with a clear message.
#
# Usage: tests/helm/chart_test.sh CRMSYNC_BINARY WORK_DIR
set -euo pipefail

crmsync=${1:?usage: chart_test.sh CRMSYNC_BINARY WORK_DIR}
work=${2:?usage: chart_test.sh CRMSYNC_BINARY WORK_DIR}
src=$(cd "$(dirname "$0")/../.." && pwd)
chart=$src/helm/crmsync
here=$src/tests/helm
mkdir -p "$work"
work=$(cd "$work" && pwd)
case $crmsync in /*) ;; *) crmsync=$PWD/$crmsync ;; esac
if [ ! -x "$crmsync" ]; then
  echo "no crmsync binary at $crmsync" >&2
  exit 1
fi

# Go programs build in GOPATH mode against Debian's packaged libraries
# (scripts/install-deps.sh), with the build cache inside the build dir.
go_build() { # out dir
  if ! command -v go >/dev/null; then
    echo "go is not installed: run scripts/install-deps.sh" >&2
    exit 1
  fi
  (cd "$2" && GO111MODULE=off GOPATH=/usr/share/gocode GOFLAGS= GOENV=off GOCACHE="$work/gocache" \
    go build -o "$1" main.go)
}

go_build "$work/chartcheck" "$here/chartcheck"

helm_version=$(sed -n 's/^helm_version=//p' "$src/scripts/install-deps.sh")
helm=${CRMSYNC_HELM:-${CRMSYNC_CACHE:-$HOME/.cache/crmsync}/helm-$helm_version/helm}
if [ ! -x "$helm" ]; then
  helm=$(command -v helm || true)
fi
if [ -z "$helm" ]; then
  echo "helm is not installed: run scripts/install-deps.sh" >&2
  exit 1
fi
renderer="helm $("$helm" version --short 2>/dev/null) ($helm)"
render() { "$helm" template crmsync "$chart" --namespace crm \
  --api-versions monitoring.coreos.com/v1 --api-versions keda.sh/v1alpha1 "$@"; }
echo "rendering with $renderer"

status=0
pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok   $*"; }
bad() { fail=$((fail + 1)); status=1; echo "FAIL $*"; }

# case NAME PARTITIONS CHECKARGS... -- RENDERARGS...
check_case() {
  local name=$1 partitions=$2
  shift 2
  local args=()
  while [ "$1" != "--" ]; do args+=("$1"); shift; done
  shift
  echo "== $name"
  if ! render "$@" >"$work/$name.yaml" 2>"$work/$name.err"; then
    bad "$name: render failed: $(cat "$work/$name.err")"
    return
  fi
  if "$work/chartcheck" --crmsync "$crmsync" --partitions "$partitions" \
    --dashboard "$chart/dashboards/crmsync.json" "${args[@]}" "$work/$name.yaml"; then
    ok "$name"
  else
    bad "$name: see the failed checks above"
  fi
}

# expect_failure NAME PATTERN RENDERARGS...
expect_failure() {
  local name=$1 pattern=$2
  shift 2
  echo "== $name"
  if render "$@" >"$work/$name.yaml" 2>"$work/$name.err"; then
    bad "$name: rendered although it must fail"
  elif grep -qE -- "$pattern" "$work/$name.err"; then
    ok "$name: $(grep -oE -- "$pattern" "$work/$name.err" | head -1)"
  else
    bad "$name: failed without the expected message /$pattern/: $(cat "$work/$name.err")"
  fi
}

# helm lint --strict: the chart with each values file that must render.
lint() { # NAME RENDERARGS...
  local name=$1
  shift
  if "$helm" lint --strict "$chart" "$@" >"$work/lint-$name.log" 2>&1; then
    ok "lint $name"
  else
    bad "lint $name: $(cat "$work/lint-$name.log")"
  fi
}
lint defaults
lint keda -f "$here/values-keda.yaml"
lint hpa -f "$here/values-hpa.yaml"
lint state-rocksdb -f "$here/values-state-rocksdb.yaml"
# and fails on values the schema refuses
if "$helm" lint --strict "$chart" -f "$here/values-bad-schema.yaml" >"$work/lint-bad.log" 2>&1; then
  bad "lint bad-schema: passed although the values break the schema"
else
  ok "lint bad-schema: refused"
fi

check_case defaults 8 \
  --topics 1 --expect ConfigMap --expect Deployment --expect Service \
  --expect PodDisruptionBudget --expect ServiceAccount \
  --absent ScaledObject --absent HorizontalPodAutoscaler --absent ServiceMonitor \
  --absent PrometheusRule -- 

check_case keda 12 \
  --topics 2 --expect ScaledObject --expect ServiceMonitor --expect PrometheusRule \
  --absent HorizontalPodAutoscaler -- \
  -f "$here/values-keda.yaml"

check_case hpa 6 \
  --expect HorizontalPodAutoscaler --absent ScaledObject -- \
  -f "$here/values-hpa.yaml"

check_case state-rocksdb 8 -- \
  -f "$here/values-state-rocksdb.yaml"

# expect_check_failure NAME PATTERN CHECKARGS... -- RENDERARGS...: renders, and
# chartcheck must fail with PATTERN in its output.
expect_check_failure() {
  local name=$1 pattern=$2
  shift 2
  local args=()
  while [ "$1" != "--" ]; do args+=("$1"); shift; done
  shift
  echo "== $name"
  if ! render "$@" >"$work/$name.yaml" 2>"$work/$name.err"; then
    bad "$name: render failed: $(cat "$work/$name.err")"
  elif "$work/chartcheck" --crmsync "$crmsync" --partitions 12 "${args[@]}" "$work/$name.yaml" \
    >"$work/$name.out"; then
    bad "$name: chartcheck passed although it must fail"
  elif grep -qE -- "$pattern" "$work/$name.out"; then
    ok "$name: $(grep -E -- "$pattern" "$work/$name.out" | head -1)"
  else
    bad "$name: chartcheck failed without /$pattern/: $(grep FAIL "$work/$name.out")"
  fi
}

expect_check_failure fast-scale-down 'FAIL ScaledObject scales down gradually' -- \
  -f "$here/values-fast-scale-down.yaml"

expect_failure kafka-literal-password \
  'config.kafka.properties.sasl.password is a credential' \
  -f "$here/values-kafka-literal-password.yaml"

expect_failure too-many-replicas \
  'maxReplicaCount \(12\) exceeds partitions \(8\)' \
  -f "$here/values-too-many-replicas.yaml"

expect_failure short-grace \
  'terminationGracePeriodSeconds \(10\) must be greater than the drain deadline' \
  -f "$here/values-short-grace.yaml"

expect_failure state-rocksdb-no-dir \
  'config.state.dir is required with config.state.backend rocksdb' \
  -f "$here/values-state-rocksdb-no-dir.yaml"

expect_failure bad-schema \
  "partitions.*(integer|Invalid type)" \
  -f "$here/values-bad-schema.yaml"

echo "chart: $pass passed, $fail failed"
exit $status
