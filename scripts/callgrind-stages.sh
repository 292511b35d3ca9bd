#!/usr/bin/env bash
# Instructions per event for each stage of the worker's pipeline, counted by
# valgrind's callgrind on a fixed input (build/crmsync-stages). Repeatable on
# a busy machine where times are not.
#
#   scripts/callgrind-stages.sh [build-dir] [crmsync-stages options...]
#
# Prints a Markdown table; the raw profile stays in <build-dir>/callgrind/.
set -euo pipefail
build=${1:-build}
shift || true
events=20000
for ((i = 1; i <= $#; i++)); do
  if [[ ${!i} == --events ]]; then j=$((i + 1)); events=${!j}; fi
done
command -v valgrind >/dev/null || { echo "valgrind is not installed (apt-get install valgrind)" >&2; exit 2; }
out="$build/callgrind"
mkdir -p "$out"
profile="$out/stages.callgrind"
valgrind --tool=callgrind --callgrind-out-file="$profile" --dump-instr=no \
  "$build/crmsync-stages" --events "$events" "$@" 2>"$out/valgrind.log" | tail -1
callgrind_annotate --inclusive=yes --threshold=100 "$profile" >"$out/annotate.txt" 2>/dev/null

# Inclusive instructions of the first function whose name matches $1.
cost() {
  awk -v pat="$1" '$0 ~ pat { gsub(",", "", $1); print $1; exit }' "$out/annotate.txt"
}
row() {  # label, instructions
  local n=${2:-0}
  printf '| %s | %s | %s |\n' "$1" "$n" "$(awk -v n="$n" -v e="$events" 'BEGIN { printf "%.0f", n / e }')"
}
decode=$(cost 'crmsync::mapping::DecodeMessage\(')
validate=$(cost 'crmsync::mapping::JsonSchema::FirstViolation')
map=$(cost 'crmsync::mapping::Map\(')
process=$(cost 'StageDecodeAndMap')
track=$(cost 'StageTrack')
enqueue=$(cost 'StageEnqueue')
take=$(cost 'StageTakeReady')
build_request=$(cost 'StageBuildRequest')
classify=$(cost 'StageClassify')
finish=$(cost 'StageFinish')
echo "| stage | instructions | per event |"
echo "|---|---:|---:|"
row "decode (JSON parse, fill the event; without validation)" $((${decode:-0} - ${validate:-0}))
row "validate (event schema)" "${validate:-0}"
row "map (rules to operations)" "${map:-0}"
row "rest of the message step (topic, notes, moves)" $((${process:-0} - ${decode:-0} - ${map:-0}))
row "offset tracking (add)" "${track:-0}"
row "dispatch: enqueue (lines, coalescing)" "${enqueue:-0}"
row "dispatch: take ready batches" "${take:-0}"
row "request build" "${build_request:-0}"
row "response classify" "${classify:-0}"
row "finish (outcomes to messages, committable offsets)" "${finish:-0}"
total=$((${process:-0} + ${track:-0} + ${enqueue:-0} + ${take:-0} + ${build_request:-0} + ${classify:-0} + ${finish:-0}))
row "**all stages**" "$total"
