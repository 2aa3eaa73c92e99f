#!/usr/bin/env bash
# Cross-compiles the dxgi capture plugin with Debian's mingw-w64 into
# deskstream_capture_dxgi.dll and checks that it exports deskstream_plugin_entry and imports
# Windows system libraries only (no libstdc++/libgcc/winpthread DLL to ship alongside).
# Usage: dxgi_cross_build.sh <source root> <output folder>
set -euo pipefail
SRC=${1:?source root}
OUT=${2:?output folder}
CXX=x86_64-w64-mingw32-g++
OBJDUMP=x86_64-w64-mingw32-objdump
for tool in "$CXX" "$OBJDUMP"; do
  command -v "$tool" >/dev/null || { echo "dxgi: '$tool' is missing (scripts/bootstrap.sh installs g++-mingw-w64-x86-64)" >&2; exit 1; }
done
mkdir -p "$OUT"
DLL="$OUT/deskstream_capture_dxgi.dll"
rm -f "$DLL"
"$CXX" -std=c++17 -O2 -Wall -Wextra -Werror -shared -I"$SRC/sdk/include" \
  "$SRC/plugins/capture/dxgi/dxgi_capture.cpp" -o "$DLL" \
  -static -static-libgcc -static-libstdc++ -ld3d11 -ldxgi -luser32
echo "dxgi: built $DLL ($(stat -c %s "$DLL") bytes)"

HEADERS=$("$OBJDUMP" -p "$DLL")
EXPORTS=$(sed -n '/\[Ordinal\/Name Pointer\] Table/,/^$/p' <<<"$HEADERS" | awk '/\]/ && !/Table/ {print $NF}')
if [ "$EXPORTS" != "deskstream_plugin_entry" ]; then
  echo "dxgi: FAIL: the DLL must export exactly deskstream_plugin_entry, it exports: ${EXPORTS:-nothing}" >&2
  exit 1
fi
bad=0
while read -r dll; do
  case "${dll,,}" in
    d3d11.dll|dxgi.dll|kernel32.dll|user32.dll|msvcrt.dll|api-ms-win-*.dll) echo "dxgi: imports $dll" ;;
    *) echo "dxgi: FAIL: imports $dll, which is not a Windows system library" >&2; bad=1 ;;
  esac
done < <(awk '/DLL Name:/ {print $3}' <<<"$HEADERS")
[ "$bad" -eq 0 ] || exit 1
echo "dxgi: OK: exports deskstream_plugin_entry, imports Windows libraries only"
