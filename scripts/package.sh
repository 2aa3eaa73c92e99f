#!/usr/bin/env bash
# Builds the Debian package with CPack from a Release build (tests and benchmarks off) and checks
# it: `dpkg-deb -c` lists the expected files, the dependencies were computed (shlibdeps), lintian
# reports no errors, and the package's files work from a throw-away root (dpkg-deb -x; the
# extracted host lists the extracted plugins). Prints the .deb's path last.
# Environment: DESKSTREAM_PACKAGE_BUILD (build folder, default build/package),
# DESKSTREAM_JOBS (parallel jobs).
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD=${DESKSTREAM_PACKAGE_BUILD:-build/package}
JOBS=${DESKSTREAM_JOBS:-$(nproc)}
launcher=()
if command -v ccache >/dev/null; then
  launcher=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
fi
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DDESKSTREAM_BUILD_TESTS=OFF \
  -DDESKSTREAM_BUILD_BENCH=OFF -DDESKSTREAM_WERROR=ON "${launcher[@]}" >/dev/null
cmake --build "$BUILD" -j "$JOBS"
rm -f "$BUILD"/deskstream_*.deb
(cd "$BUILD" && cpack -G DEB >/dev/null)
deb=$(ls "$BUILD"/deskstream_*.deb)
echo "package: built $deb"

fail() { echo "package: $*" >&2; exit 1; }

contents=$(dpkg-deb -c "$deb")
for f in ./usr/bin/deskstream \
         ./usr/lib/deskstream/plugins/deskstream_capture_synthetic.so \
         ./usr/lib/deskstream/plugins/deskstream_encoder_jpeg.so \
         ./usr/lib/deskstream/plugins/deskstream_store_sqlite.so \
         ./usr/lib/deskstream/plugins/deskstream_store_postgres.so \
         ./usr/share/deskstream/web/index.html \
         ./usr/share/deskstream/examples/deskstream.ini \
         ./etc/deskstream/deskstream.ini \
         ./lib/systemd/system/deskstream.service \
         ./usr/share/doc/deskstream/copyright; do
  grep -qE " ${f//./\\.}\$" <<<"$contents" || fail "dpkg-deb -c: $f is missing"
done
echo "package: dpkg-deb -c lists the expected files"

depends=$(dpkg-deb -f "$deb" Depends)
for lib in libc6 libpoco adduser libturbojpeg libsqlite3 libpq5; do
  grep -q "$lib" <<<"$depends" || fail "Depends lacks $lib: $depends"
done
echo "package: Depends: $depends"

conffiles=$(dpkg-deb -I "$deb" conffiles)
grep -qx "/etc/deskstream/deskstream.ini" <<<"$conffiles" || fail "the INI is not a conffile"

lintian --fail-on error --tag-display-limit 0 "$deb" || fail "lintian reported errors"
echo "package: lintian reports no errors"

# A throw-away root: the files as dpkg would lay them out, and the host finding its plugins
# relative to its own location there. (dpkg --root would run the maintainer scripts, which add
# a system user, inside a root that has no shell; docs/embedding.md shows it with a chroot.)
root=$(mktemp -d /tmp/deskstream-root.XXXXXX)
trap 'rm -rf "$root"' EXIT
dpkg-deb -x "$deb" "$root"
listing=$("$root/usr/bin/deskstream" --list-plugins)
grep -q $'store	sqlite' <<<"$listing" || fail "the extracted host does not find its plugins: $listing"
grep -q "$root/usr/lib/deskstream/plugins" <<<"$listing" || fail "plugins not found relative to the executable"
echo "package: the extracted host lists its plugins from $root/usr/lib/deskstream/plugins"
echo "$deb"
