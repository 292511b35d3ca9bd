#!/usr/bin/env bash
# The layer rules the per-library include trees (cmake/Layers.cmake) cannot
# express, since librdkafka's headers sit in /usr/include for everyone:
#   - librdkafka is included only by the kafka layer (worker/kafka/),
#     mapping/config_kafka.cc (it checks kafka.properties against librdkafka),
#     the benchmark and tests;
#   - its mock cluster (rdkafka_mock.h) only by the test broker and tests;
#   - RocksDB only by the rocksdb state backend's source
#     (worker/state/rocksdb_backend.cc; its header holds no RocksDB type);
#   - the worker binary given as the argument holds no simulator code and
#     calls no rd_kafka_mock_* function, and loads mimalloc when its build
#     says so (CRMSYNC_MIMALLOC), before libc, so that it is the allocator.
#
#   scripts/layer-check.sh build/crmsync
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
binary="${1:?usage: layer-check.sh <path to the crmsync binary>}"
cd "$root"
status=0

rdkafka=$(git grep -l '#include <librdkafka/' -- '*.cc' '*.h' \
  | grep -v -e '^worker/kafka/' -e '^mapping/config_kafka\.cc$' -e '^bench/' -e '^tests/' || true)
if [ -n "$rdkafka" ]; then
  echo "layer-check: librdkafka included outside the kafka layer:" $rdkafka >&2
  status=1
fi
mock=$(git grep -l '#include <librdkafka/rdkafka_mock\.h>' -- '*.cc' '*.h' \
  | grep -v -e '^worker/kafka/test_broker\.cc$' -e '^tests/' || true)
if [ -n "$mock" ]; then
  echo "layer-check: the mock cluster included outside the test broker:" $mock >&2
  status=1
fi

rocksdb=$(git grep -l '#include <rocksdb/' -- '*.cc' '*.h' \
  | grep -v -e '^worker/state/rocksdb_backend\.cc$' || true)
if [ -n "$rocksdb" ]; then
  echo "layer-check: RocksDB included outside worker/state/rocksdb_backend.cc:" $rocksdb >&2
  status=1
fi

sim=$(nm -C "$binary" | grep -c 'crmsync::sim::' || true)
mock_calls=$(nm -u "$binary" | grep -c 'rd_kafka_mock_' || true)
if [ "$sim" != 0 ] || [ "$mock_calls" != 0 ]; then
  echo "layer-check: $binary holds $sim simulator symbol(s) and calls $mock_calls mock-cluster function(s)" >&2
  status=1
fi
cache="$(dirname "$binary")/CMakeCache.txt"
if [ -f "$cache" ] && grep -q '^CRMSYNC_MIMALLOC:BOOL=ON' "$cache"; then
  needed=$(readelf -d "$binary" | awk '/NEEDED/ { print $NF }' | tr -d '[]')
  first=$(echo "$needed" | grep -n -e '^libmimalloc' -e '^libc\.so' | head -1 | cut -d: -f2)
  if [[ "$first" != libmimalloc* ]]; then
    echo "layer-check: $binary does not load mimalloc before libc (needed: $(echo $needed))" >&2
    status=1
  fi
fi
[ "$status" = 0 ] && echo "layer-check: $binary carries no simulator and no mock cluster"
exit "$status"
