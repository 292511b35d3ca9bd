#!/usr/bin/env bash
# Fails when a tracked C++ file differs from what clang-format (the repo's
# .clang-format) makes of it; `make format` fixes them.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
command -v clang-format > /dev/null || bash "$root/scripts/install-deps.sh"
cd "$root"
mapfile -t files < <(git ls-files '*.h' '*.cc')
clang-format --dry-run --Werror "${files[@]}"
echo "clang-format: ${#files[@]} files formatted"
