#!/usr/bin/env bash
# Builds fuzz/decode_map_fuzzer with clang (libFuzzer, ASan, UBSan) in
# build-fuzz/ and runs it for the given number of seconds (default 20),
# seeded from the mapping golden files. Exits non-zero on any finding; the
# crashing input is left in build-fuzz/findings/.
#
#   scripts/fuzz.sh            # the short run `make test` does
#   scripts/fuzz.sh 3600       # a longer run (docs/MAPPING.md)
set -euo pipefail

seconds="${1:-20}"
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${CRMSYNC_FUZZ_BUILD:-$root/build-fuzz}"
jobs="${JOBS:-2}"

# libFuzzer's runtime ships in libclang-rt-<version>-dev, which a plain clang
# install may lack; install-deps.sh installs it.
fuzzer_runtime() { compgen -G "/usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a" > /dev/null; }
if ! command -v clang++ > /dev/null || ! fuzzer_runtime; then
  bash "$root/scripts/install-deps.sh"
fi

# pointer-overflow stays recoverable so that fuzz/ubsan.supp can silence a
# known RapidJSON 1.1 report; everything else aborts.
sanitizers="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fsanitize-recover=pointer-overflow -fno-omit-frame-pointer"
# The mapping and provider libraries and the embedded schemas, instrumented for coverage.
# RapidJSON's SSE2 scans are off (AddressSanitizer reports their aligned
# loads past a string's end; see CMakeLists.txt). Warnings stay warnings
# here: the zero-warning build is the GCC one of `make check`; clang 14 also
# reports RapidJSON 1.1's member iterators as ambiguous under C++20
# (-Wambiguous-reversed-operator).
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCRMSYNC_WERROR=OFF -DCRMSYNC_RAPIDJSON_SSE2=OFF -DCRMSYNC_MIMALLOC=OFF \
  -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
  -DCMAKE_CXX_FLAGS="$sanitizers -fsanitize=fuzzer-no-link" > "$build.configure.log" 2>&1 \
  || { cat "$build.configure.log"; exit 1; }
cmake --build "$build" -j"$jobs" --target crmsync_providers crmsync_mapping crmsync_schemas > "$build.build.log" 2>&1 \
  || { cat "$build.build.log"; exit 1; }
clang++ -std=c++20 -O1 -g $sanitizers -fsanitize=fuzzer -DRAPIDJSON_HAS_STDSTRING=1 \
  -I"$root" -I"$build/schemas/crmsync_schemas_gen" \
  "$root/fuzz/decode_map_fuzzer.cc" \
  "$build/providers/libcrmsync_providers.a" "$build/mapping/libcrmsync_mapping.a" \
  "$build/schemas/libcrmsync_schemas.a" \
  $(pkg-config --libs rdkafka) -lsimdjson \
  -o "$build/decode_map_fuzzer"

# Seeds: every golden payload, prefixed with each control byte's format.
corpus="$build/corpus"
findings="$build/findings"
mkdir -p "$corpus" "$findings"
for file in "$root"/tests/mapping/testdata/golden/*.in.json "$root"/tests/mapping/testdata/decode/*.in.json; do
  name="$(basename "$file" .in.json)"
  for control in 0 1 2 3 4; do
    { printf "\\x0$control"; cat "$file"; } > "$corpus/$name-$control"
  done
done

export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:suppressions=$root/fuzz/ubsan.supp"
"$build/decode_map_fuzzer" -max_total_time="$seconds" -max_len=65536 -timeout=10 \
  -artifact_prefix="$findings/" -print_final_stats=1 "$corpus"
