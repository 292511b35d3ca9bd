#!/usr/bin/env bash
# Copy-paste check: jscpd (the version scripts/jscpd/package-lock.json pins)
# over the C++ sources outside tests/, reporting every block of six or more
# lines (and 50 tokens) found twice (.jscpd.json). Fails on any clone that is
# not in .jscpd-baseline.json, the allow-list of known duplicates that
# docs/ARCHITECTURE.md names.
#
#   scripts/dup-check.sh            # the check `make check` runs
#   scripts/dup-check.sh --update   # rewrite the allow-list from the tree
#                                   # (after removing duplicates: it shrinks)
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
jscpd="$(bash "$root/scripts/install-deps.sh" --jscpd-path)"
if [ ! -x "$jscpd" ]; then
  bash "$root/scripts/install-deps.sh"
fi
cd "$root"
if [ "${1:-}" = "--update" ]; then
  exec "$jscpd" --config .jscpd.json --update-baseline .
fi
exec "$jscpd" --config .jscpd.json .
