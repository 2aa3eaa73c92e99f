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
  # tests and benchmarks
  libgtest-dev libgmock-dev libbenchmark-dev postgresql sqlite3 procps
  # capture: pipewire (library, portal D-Bus client; daemon, session manager, bus and
  # GStreamer sources for its tests) and the dxgi cross-build check
  libpipewire-0.3-dev libdbus-1-dev pipewire wireplumber dbus gstreamer1.0-tools
  gstreamer1.0-plugins-base gstreamer1.0-pipewire g++-mingw-w64-x86-64 binutils-mingw-w64-x86-64
)

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
