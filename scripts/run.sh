#!/usr/bin/env bash
# README command 1: installs what is needed, builds Release and runs deskstream in the embedded
# default: relay + agent + viewer on http://127.0.0.1:8080, SQLite state in var/.
# Extra arguments go to deskstream (e.g. scripts/run.sh --set agent.fps=15).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/bootstrap.sh
cmake --preset release -G Ninja >/dev/null
cmake --build --preset release -j "$(nproc)"

mkdir -p var
exec build/release/host/deskstream \
  --set host.plugins.path="$(pwd)/build/release/plugins" \
  --set host.state_dir="$(pwd)/var" \
  --set relay.web_root="$(pwd)/web" \
  "$@"
