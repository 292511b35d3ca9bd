#!/usr/bin/env bash
# A single-node Apache Kafka (KRaft, combined broker + controller) on
# 127.0.0.1 with free ports, a state directory of its own and a small heap,
# run from Apache's jars on Maven Central (tests/kafka/broker/pom.xml pins the
# version; Maven resolves the classpath once into ~/.m2 and a cached list).
#
#   kafka-broker.sh classpath          resolve the jars (once) and print the classpath
#   kafka-broker.sh prepare DIR        write DIR/server.properties (free ports) and format DIR/logs
#   kafka-broker.sh run DIR            prepare if needed, then exec the broker in the foreground
#   kafka-broker.sh start DIR          run it in the background; waits until it serves
#   kafka-broker.sh stop DIR           SIGTERM (controlled shutdown), waits
#   kafka-broker.sh kill DIR           SIGKILL, waits
#   kafka-broker.sh restart DIR        stop, then start on the same ports and log dir
#   kafka-broker.sh bootstrap DIR      print host:port
#   kafka-broker.sh wait DIR [SECS]    wait until DIR/broker.log says the broker started
#
# A restarted broker keeps its ports, its log dir and so its topics and
# committed offsets. Environment: KAFKA_HEAP (default -Xmx256m -Xms64m),
# KAFKA_JVM_FLAGS (default -XX:+UseSerialGC -XX:TieredStopAtLevel=1: quick to
# start, as tests want; a benchmark wants the full JIT),
# CRMSYNC_CACHE (default ~/.cache/crmsync) for the classpath list.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
pom="$root/tests/kafka/broker/pom.xml"
log_config="$root/tests/kafka/broker/log4j2.properties"
cache="${CRMSYNC_CACHE:-$HOME/.cache/crmsync}"
version="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$pom")"
classpath_file="$cache/kafka-$version.classpath"

die() {
  echo "kafka-broker: $*" >&2
  exit 1
}

# The cached classpath is used while every jar it names is in ~/.m2; else
# Maven resolves it again (offline first, then online, a few tries).
classpath() {
  if [ -s "$classpath_file" ] && [ "$classpath_file" -nt "$pom" ]; then
    local ok=1 jar
    IFS=: read -ra jars <"$classpath_file" || true
    for jar in "${jars[@]}"; do [ -f "$jar" ] || ok=0; done
    if [ "$ok" = 1 ]; then
      cat "$classpath_file"
      return
    fi
  fi
  command -v mvn >/dev/null || die "mvn not found (scripts/install-deps.sh installs maven)"
  mkdir -p "$cache"
  local tmp="$classpath_file.$$" attempt
  for attempt in offline 1 2 3; do
    local flags=(-q -B -f "$pom" dependency:build-classpath "-Dmdep.outputFile=$tmp")
    [ "$attempt" = offline ] && flags+=(-o)
    if mvn "${flags[@]}" >"$cache/mvn.log" 2>&1 && [ -s "$tmp" ]; then
      mv "$tmp" "$classpath_file"
      cat "$classpath_file"
      return
    fi
    [ "$attempt" = offline ] || {
      echo "kafka-broker: resolving Kafka $version with Maven failed (try $attempt)" >&2
      sleep $((attempt * 5))
    }
  done
  rm -f "$tmp"
  cat "$cache/mvn.log" >&2
  die "cannot resolve Kafka $version with Maven"
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

java_cmd() {
  # shellcheck disable=SC2206
  local heap=(${KAFKA_HEAP:--Xmx256m -Xms64m})
  # shellcheck disable=SC2206
  local flags=(${KAFKA_JVM_FLAGS:--XX:+UseSerialGC -XX:TieredStopAtLevel=1})
  echo java "${heap[@]}" "${flags[@]}" -Xshare:auto \
    -Djava.awt.headless=true "-Dlog4j2.configurationFile=$log_config"
}

prepare() {
  local dir="$1"
  [ -f "$dir/server.properties" ] && return
  mkdir -p "$dir"
  local cp port controller
  cp="$(classpath)"
  port="$(free_port)"
  controller="$(free_port)"
  while [ "$controller" = "$port" ]; do controller="$(free_port)"; done
  cat >"$dir/server.properties.tmp" <<EOF
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:$controller
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$controller
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$dir/logs
# One broker: every internal topic has one replica.
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=2
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
# Fast: no wait for more members before the first rebalance, retention and
# segment deletion checked every second.
group.initial.rebalance.delay.ms=0
log.retention.check.interval.ms=1000
log.segment.delete.delay.ms=0
file.delete.delay.ms=1000
num.partitions=1
num.network.threads=2
num.io.threads=2
num.recovery.threads.per.data.dir=1
background.threads=2
auto.create.topics.enable=false
# Sessions of up to 60 s (static-membership tests); the broker default 45 s
# bounds session.timeout.ms.
group.max.session.timeout.ms=60000
group.min.session.timeout.ms=1000
EOF
  echo "127.0.0.1:$port" >"$dir/bootstrap"
  local cluster_id
  # shellcheck disable=SC2046
  cluster_id="$($(java_cmd) -cp "$cp" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -1)"
  # shellcheck disable=SC2046
  $(java_cmd) -cp "$cp" kafka.tools.StorageTool format --standalone -t "$cluster_id" \
    -c "$dir/server.properties.tmp" >"$dir/format.log" 2>&1 ||
    {
      cat "$dir/format.log" >&2
      die "storage format failed"
    }
  mv "$dir/server.properties.tmp" "$dir/server.properties"
}

run() {
  local dir="$1"
  prepare "$dir"
  local cp
  cp="$(classpath)"
  # shellcheck disable=SC2046
  exec $(java_cmd) -cp "$cp" kafka.Kafka "$dir/server.properties"
}

# Waits until the broker.log of the current run says it started.
wait_started() {
  local dir="$1" secs="${2:-60}" i
  for ((i = 0; i < secs * 10; i++)); do
    grep -q "Kafka Server started" "$dir/broker.log" 2>/dev/null && return 0
    if [ -f "$dir/pid" ] && ! kill -0 "$(cat "$dir/pid")" 2>/dev/null; then
      tail -30 "$dir/broker.log" >&2
      die "broker exited during start-up"
    fi
    sleep 0.1
  done
  die "broker not started after ${secs}s (see $dir/broker.log)"
}

start() {
  local dir="$1"
  prepare "$dir"
  if [ -f "$dir/pid" ] && kill -0 "$(cat "$dir/pid")" 2>/dev/null; then
    die "already running (pid $(cat "$dir/pid"))"
  fi
  : >"$dir/broker.log"
  nohup "$0" run "$dir" >>"$dir/broker.log" 2>&1 &
  echo $! >"$dir/pid"
  wait_started "$dir" 90
  cat "$dir/bootstrap"
}

signal_and_wait() {
  local dir="$1" sig="$2" pid i
  [ -f "$dir/pid" ] || return 0
  pid="$(cat "$dir/pid")"
  kill "-$sig" "$pid" 2>/dev/null || true
  for ((i = 0; i < 300; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    kill -KILL "$pid" 2>/dev/null || true
    sleep 0.2
  fi
  rm -f "$dir/pid"
}

cmd="${1:-}"
case "$cmd" in
  classpath) classpath ;;
  prepare) prepare "${2:?DIR}" ;;
  run) run "${2:?DIR}" ;;
  start) start "${2:?DIR}" ;;
  stop) signal_and_wait "${2:?DIR}" TERM ;;
  kill) signal_and_wait "${2:?DIR}" KILL ;;
  restart)
    signal_and_wait "${2:?DIR}" TERM
    start "$2"
    ;;
  bootstrap) cat "${2:?DIR}/bootstrap" ;;
  wait) wait_started "${2:?DIR}" "${3:-60}" ;;
  *)
    sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'
    exit 2
    ;;
esac
