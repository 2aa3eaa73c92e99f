#!/usr/bin/env bash
# README command 1: installs what is needed, builds Release (only the executable, plugins and web
# files) and runs deskstream in the embedded
# default: relay + agent + viewer on http://127.0.0.1:8080, SQLite state in var/.
# Extra arguments go to deskstream (e.g. scripts/run.sh --set agent.fps=15).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/bootstrap.sh
cmake --preset release -G Ninja >/dev/null
# Only what runs: the executable, the plugins and the web files (not tests or benchmarks).
cmake --build --preset release -j "$(nproc)" --target deskstream_runtime

mkdir -p var
exec build/release/host/deskstream \
  --set host.plugins.path="$(pwd)/build/release/plugins" \
  --set host.state_dir="$(pwd)/var" \
  --set relay.web_root="$(pwd)/web" \
  "$@"
