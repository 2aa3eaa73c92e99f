#!/usr/bin/env bash
# Installs every build and test dependency of deskstream from Debian 12 packages.
# Idempotent and quiet: does nothing when everything is already installed.
set -euo pipefail

PACKAGES=(
  # build
  build-essential cmake ninja-build pkg-config git ca-certificates curl
  # libraries
  libpoco-dev libturbojpeg0-dev libjpeg62-turbo-dev libwebp-dev libavif-dev libpng-dev
  libpq-dev libsqlite3-dev
  # x11 capture plugin
  libx11-dev libxext-dev libxrandr-dev libxfixes-dev libxdamage-dev libxtst-dev
  # tests and benchmarks
  libgtest-dev libgmock-dev libbenchmark-dev postgresql sqlite3 procps
  # x11 capture tests (an Xvfb server, xrandr, xdpyinfo) and bench/capture (a moving picture, ffmpeg)
  xvfb x11-xserver-utils x11-utils ffmpeg gstreamer1.0-tools gstreamer1.0-x gstreamer1.0-plugins-base
  # the Debian package (scripts/package.sh): dpkg-shlibdeps, lintian
  dpkg-dev lintian file
  # promtool: the tests check /metrics and the alert rules with it (docs/operations.md)
  prometheus
  # capture: pipewire (library, portal D-Bus client; daemon, session manager, bus and
  # GStreamer sources for its tests) and the dxgi cross-build check
  libpipewire-0.3-dev libdbus-1-dev pipewire wireplumber dbus gstreamer1.0-tools
  gstreamer1.0-plugins-base gstreamer1.0-pipewire g++-mingw-w64-x86-64 binutils-mingw-w64-x86-64
  # fault tests (tests/faults, bench/soak): network namespaces, veth pairs, tc, iptables
  iproute2 iptables
  # one C++ format (.clang-format; scripts/format.sh --check runs in the suite)
  clang-format-14
  # TLS (docs/security-tls.md): OpenSSL headers for the relay's and agent's NetSSL code, and the
  # openssl tool the TLS tests make their self-signed pairs with
  libssl-dev openssl
  # fuzzing (tests/fuzz, scripts/fuzz.sh, docs/fuzzing.md): clang and the libFuzzer runtime
  # (libclang_rt.fuzzer-x86_64.a, which clang-14 only recommends)
  clang-14 libclang-rt-14-dev
)
# Browser end-to-end tests (tests/e2e): Debian's Chromium, and Node.js + npm when no Node.js is
# installed yet; scripts/lib/e2e.sh then installs playwright-core into tests/e2e/node_modules.
PACKAGES+=(chromium)
command -v npm >/dev/null 2>&1 || PACKAGES+=(nodejs npm)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "bootstrap: missing packages: ${missing[*]}" >&2
  echo "bootstrap: run as root (or install them with apt-get) and try again" >&2
  exit 1
fi

echo "bootstrap: installing ${#missing[@]} packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "bootstrap: done"
