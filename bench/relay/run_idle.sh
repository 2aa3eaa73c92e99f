#!/usr/bin/env bash
# Idle cost of the relay (issue 9): a Release relay holding N idle viewers (handshaken, answering
# pings, default heartbeat) -- how often do its threads wake up? Measured from the kernel's
# per-thread counters, /proc/PID/task/*/status voluntary_ctxt_switches (a thread that sleeps and
# is woken counts one), summed over the relay's threads across a window, as switches per second.
#
#   bench/relay/run_idle.sh [BUILD_DIR]     (default: build/release; needs ds_loadgen, deskstream
#                                            and the SQLite store plugin built there)
#
# Environment: VIEWERS (100), SECONDS_IDLE (measured window, 20), WARMUP (3 s after the last
# viewer connected), RELAY_BIN (the relay binary to measure, default BUILD/host/deskstream: set
# it to a copy of an older build to measure a baseline with the same load generator).
# Prints one line "idle: N viewers, T threads, V voluntary switches/s, I involuntary/s".
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${1:-$ROOT/build/release}
VIEWERS=${VIEWERS:-100}
SECONDS_IDLE=${SECONDS_IDLE:-20}
WARMUP=${WARMUP:-3}
RELAY_BIN=${RELAY_BIN:-$BUILD/host/deskstream}
LOADGEN=$BUILD/bench/relay/ds_loadgen
for f in "$RELAY_BIN" "$LOADGEN"; do
  [ -x "$f" ] || { echo "run_idle: missing $f (build ds_loadgen deskstream deskstream_store_sqlite in Release)" >&2; exit 1; }
done
OUT=$(mktemp -d /tmp/ds-idle-XXXXXX)

RELAY_PID=""; LOAD_PID=""
cleanup() {
  for p in $LOAD_PID $RELAY_PID; do
    if kill -0 "$p" 2>/dev/null; then kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; fi
  done
  rm -rf "$OUT"
}
trap cleanup EXIT

mkdir -p "$OUT/state"
"$RELAY_BIN" --role relay --set relay.listen=127.0.0.1:0 --set relay.max_viewers=1000 --set auth.max_connections_per_ip=0 \
  --set host.state_dir="$OUT/state" --set host.log.level=warning >"$OUT/relay.out" 2>"$OUT/relay.err" &
RELAY_PID=$!
PORT=""
for _ in $(seq 1 100); do
  PORT=$(sed -n 's#^viewer: http://[^:]*:\([0-9]*\)/$#\1#p' "$OUT/relay.out" 2>/dev/null | head -n 1 || true)
  [ -n "$PORT" ] && break
  kill -0 "$RELAY_PID" 2>/dev/null || break
  sleep 0.1
done
[ -n "$PORT" ] || { echo "run_idle: the relay did not start:" >&2; cat "$OUT/relay.err" >&2; exit 1; }

threads() { ls "/proc/$RELAY_PID/task" | wc -l; }
# Sum of one status field over the relay's threads (threads gone meanwhile are skipped).
switches() { cat /proc/"$RELAY_PID"/task/*/status 2>/dev/null | awk -v k="$1:" '$1 == k { s += $2 } END { print s + 0 }'; }

viewers() { curl -s "http://127.0.0.1:$PORT/metrics" | awk '$1 == "deskstream_relay_viewers" { print $2 }'; }
"$LOADGEN" --url "ws://127.0.0.1:$PORT" --desktop idle-bench --viewers "$VIEWERS" --idle \
  --warmup-seconds 0 --seconds $((SECONDS_IDLE + WARMUP + 60)) >"$OUT/loadgen.out" 2>&1 &
LOAD_PID=$!
# Wait until the relay counts every viewer as handshaken (its /metrics gauge).
for _ in $(seq 1 600); do
  [ "$(viewers)" = "$VIEWERS" ] && break
  kill -0 "$LOAD_PID" 2>/dev/null || { echo "run_idle: ds_loadgen ended early:" >&2; cat "$OUT/loadgen.out" >&2; exit 1; }
  sleep 0.1
done
[ "$(viewers)" = "$VIEWERS" ] || { echo "run_idle: only $(viewers) of $VIEWERS viewers connected" >&2; exit 1; }
sleep "$WARMUP"
T=$(threads)
V0=$(switches voluntary_ctxt_switches); I0=$(switches nonvoluntary_ctxt_switches); S0=$(date +%s.%N)
sleep "$SECONDS_IDLE"
V1=$(switches voluntary_ctxt_switches); I1=$(switches nonvoluntary_ctxt_switches); S1=$(date +%s.%N)
kill -0 "$LOAD_PID" 2>/dev/null || { echo "run_idle: ds_loadgen ended during the window:" >&2; cat "$OUT/loadgen.out" >&2; exit 1; }
awk -v n="$VIEWERS" -v t="$T" -v v=$((V1 - V0)) -v i=$((I1 - I0)) -v s0="$S0" -v s1="$S1" -v l="$(cut -d' ' -f1-3 /proc/loadavg)" \
  'BEGIN { d = s1 - s0; printf "idle: %d viewers, %d threads, %.0f voluntary switches/s, %.0f involuntary/s (%.1f s window, load average %s)\n", n, t, v / d, i / d, d, l }'
