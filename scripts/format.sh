#!/usr/bin/env bash
# One C++ format for the tree (.clang-format at the root, clang-format 14 from Debian 12).
#   scripts/format.sh          reformats every C/C++ file in place (tracked, or new and not ignored)
#   scripts/format.sh --check  lists the files clang-format would change; exit 1 if any
# Frozen copies of old SDK headers (tests/sdk/abi-*) are kept byte for byte and not formatted.
set -euo pipefail
cd "$(dirname "$0")/.."
CLANG_FORMAT=${CLANG_FORMAT:-$(command -v clang-format-14 || command -v clang-format || true)}
[ -n "$CLANG_FORMAT" ] || { echo "format: clang-format not found (scripts/bootstrap.sh installs it)" >&2; exit 2; }

mapfile -t files < <(git ls-files --cached --others --exclude-standard '*.c' '*.h' '*.cpp' '*.hpp' | grep -v '^tests/sdk/abi-')
if [ "${1:-}" = "--check" ]; then
  bad=0
  for f in "${files[@]}"; do
    if ! "$CLANG_FORMAT" --style=file "$f" | cmp -s - "$f"; then
      echo "format: $f is not formatted (run scripts/format.sh)"
      bad=1
    fi
  done
  [ "$bad" -eq 0 ] && echo "format: ${#files[@]} files formatted"
  exit "$bad"
fi
"$CLANG_FORMAT" --style=file -i "${files[@]}"
