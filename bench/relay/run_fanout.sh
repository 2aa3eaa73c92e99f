#!/usr/bin/env bash
# The relay fan-out benchmark of issue 5, in one command (everything on 127.0.0.1, bounded):
#   A. 200 viewers, replay source at 30 fps (1080p JPEG q75): per-viewer fps, relay-added
#      latency, relay CPU and peak RSS;
#   B. 50 viewers, replay source uncapped (window-limited): the relay's delivered GB/s;
#   C. the bare Poco sender (ds_fanout_ceiling) with 50 raw receivers: the ceiling GB/s;
#   D. (run right after A) the bare Poco sender paced at 30 fps to 200 raw receivers: the
#      latency floor of A on this machine (receive wall time - send tick stamped in the header).
#   E. (issue 13) 1,000 viewers of one 1080p stream at 5 fps: every viewer's fps, the relay's
#      thread count (sampled from /proc/PID/status during the run) and peak RSS;
#   F. (issue 13) the most viewers at 1080p30 before any viewer drops below 28 fps: a search
#      from SEARCH_FROM viewers up by SEARCH_STEP (stopping at SEARCH_MAX or the first miss),
#      with the load generator's own CPU beside each step.
# Fairness (issue 19): the raw receivers of C and D ack every frame like A's and B's viewers
# (--raw-acks) and the ceiling parses each ack with the relay's parser (--parse-acks 1); both
# latency clocks start before the frame's send; every line reports the load generator's own CPU.
#
#   bench/relay/run_fanout.sh [BUILD_DIR]      (default: build/bench-relay, Release)
#
# Environment: SECONDS_A / SECONDS_B / SECONDS_C (measured seconds, default 10), VIEWERS_A (200),
# VIEWERS_B (50), WARMUP (2), OUT (folder for the JSON results, default a temp folder),
# VIEWERS_E (1000), SECONDS_E (10), SEARCH_FROM (300), SEARCH_STEP (100), SEARCH_MAX (1000),
# SECONDS_F (6), SCENARIOS (default "A D B C E F": a subset runs only those).
# The relay is the deskstream binary itself (`--role relay`, SQLite store in a temp folder).
# Each scenario gets a fresh server process, so its peak RSS is that scenario's.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${1:-$ROOT/build/bench-relay}
SECONDS_A=${SECONDS_A:-10}
SECONDS_B=${SECONDS_B:-10}
SECONDS_C=${SECONDS_C:-10}
VIEWERS_A=${VIEWERS_A:-200}
VIEWERS_B=${VIEWERS_B:-50}
WARMUP=${WARMUP:-2}
VIEWERS_E=${VIEWERS_E:-1000}
SECONDS_E=${SECONDS_E:-10}
SEARCH_FROM=${SEARCH_FROM:-300}
SEARCH_STEP=${SEARCH_STEP:-100}
SEARCH_MAX=${SEARCH_MAX:-1000}
SECONDS_F=${SECONDS_F:-6}
SCENARIOS=${SCENARIOS:-A D B C E F}
want() { [[ " $SCENARIOS " == *" $1 "* ]]; }
OUT=${OUT:-$(mktemp -d /tmp/ds-fanout-XXXXXX)}
PNG=$ROOT/../shared/data/desktop-1080p.png
mkdir -p "$OUT"

if [ ! -x "$BUILD/bench/relay/ds_loadgen" ] || [ ! -x "$BUILD/host/deskstream" ]; then
  echo "== building the benchmark tools (Release) in $BUILD"
  cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DDESKSTREAM_SANITIZE=OFF >/dev/null
  cmake --build "$BUILD" -j2 --target ds_loadgen ds_fanout_ceiling ds_make_jpeg deskstream \
        deskstream_store_sqlite
fi
BIN=$BUILD/bench/relay
[ -f "$PNG" ] || { echo "run_fanout: missing test picture $PNG" >&2; exit 1; }

FRAME=$OUT/desktop-1080p-q75.jpg
"$BIN/ds_make_jpeg" "$PNG" "$FRAME" 75

SERVER_PID=""
cleanup() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  SERVER_PID=""
}
trap cleanup EXIT

# The relay under test: the deskstream binary (exec: its PID is the one measured; the trap
# below stops it at the end of its scenario).
relay() {
  local name=$1; shift
  mkdir -p "$OUT/state-$name"
  exec "$BUILD/host/deskstream" --role relay --set relay.listen=127.0.0.1:0 \
    --set relay.max_viewers=5000 --set relay.max_queued=4096 --set auth.max_connections_per_ip=0 \
    --set host.state_dir="$OUT/state-$name" --set host.log.level=warning "$@"
}

# start_server NAME CMD...: starts a server that prints "PORT n" (the tools) or
# "viewer: http://host:n/" (deskstream); sets SERVER_PID and PORT.
start_server() {
  local name=$1; shift
  "$@" >"$OUT/$name.out" 2>"$OUT/$name.err" &
  SERVER_PID=$!
  PORT=""
  for _ in $(seq 1 100); do
    PORT=$( { awk '/^PORT /{print $2}' "$OUT/$name.out"; sed -n 's#^viewer: http://[^:]*:\([0-9]*\)/$#\1#p' "$OUT/$name.out"; } 2>/dev/null | head -n 1 || true)
    [ -n "$PORT" ] && break
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.1
  done
  if [ -z "$PORT" ]; then
    echo "run_fanout: $name did not start:" >&2
    cat "$OUT/$name.err" >&2
    exit 1
  fi
}

budget() { echo $(( $1 + WARMUP + 60 )); }  # a server never outlives its scenario by much
json_field() { sed -n "s/.*\"$2\":\([0-9.]*\).*/\1/p" "$1"; }

echo "== $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== frame: $(stat -c %s "$FRAME") bytes; results in $OUT"

if want A; then
echo "== A. relay, $VIEWERS_A viewers, replay source at 30 fps"
start_server relay-a relay a
"$BIN/ds_loadgen" --url "ws://127.0.0.1:$PORT" --desktop bench-pc --viewers "$VIEWERS_A" \
  --seconds "$SECONDS_A" --warmup-seconds "$WARMUP" --source replay --frame "$FRAME" --fps 30 \
  --relay-pid "$SERVER_PID" --json-out "$OUT/a.json" || echo "run_fanout: scenario A failed (exit $?)"
cleanup
fi

if want D; then
echo "== D. latency floor: bare Poco WebSocket sender at 30 fps, $VIEWERS_A raw receivers"
start_server ceiling-30 "$BIN/ds_fanout_ceiling" --frame "$FRAME" --fps 30 --parse-acks 1 --max-seconds "$(budget "$SECONDS_A")"
"$BIN/ds_loadgen" --raw-acks --url "ws://127.0.0.1:$PORT" --viewers "$VIEWERS_A" \
  --seconds "$SECONDS_A" --warmup-seconds "$WARMUP" --relay-pid "$SERVER_PID" \
  --json-out "$OUT/d.json" || echo "run_fanout: scenario D failed (exit $?)"
cleanup
fi

if want B; then
echo "== B. relay, $VIEWERS_B viewers, replay source uncapped (window 10)"
start_server relay-b relay b
"$BIN/ds_loadgen" --url "ws://127.0.0.1:$PORT" --desktop bench-pc --viewers "$VIEWERS_B" \
  --seconds "$SECONDS_B" --warmup-seconds "$WARMUP" --source replay --frame "$FRAME" --fps 0 \
  --relay-pid "$SERVER_PID" --json-out "$OUT/b.json" || echo "run_fanout: scenario B failed (exit $?)"
cleanup
fi

if want C; then
echo "== C. ceiling: bare Poco WebSocket sender, $VIEWERS_B raw receivers"
start_server ceiling "$BIN/ds_fanout_ceiling" --frame "$FRAME" --parse-acks 1 --max-seconds "$(budget "$SECONDS_C")"
"$BIN/ds_loadgen" --raw-acks --url "ws://127.0.0.1:$PORT" --viewers "$VIEWERS_B" \
  --seconds "$SECONDS_C" --warmup-seconds "$WARMUP" --relay-pid "$SERVER_PID" \
  --json-out "$OUT/c.json" || echo "run_fanout: scenario C failed (exit $?)"
cleanup
fi

# sample_threads PID FILE: the most threads PID had, sampled every 0.2 s until it exits or
# the sampler is killed (the figure is written on every new maximum).
sample_threads() {
  local max=0 n
  while kill -0 "$1" 2>/dev/null; do
    n=$(awk '/^Threads:/{print $2}' "/proc/$1/status" 2>/dev/null || echo 0)
    if [ -n "$n" ] && [ "$n" -gt "$max" ]; then max=$n; echo "$max" >"$2"; fi
    sleep 0.2
  done
}

if want E; then
echo "== E. relay, $VIEWERS_E viewers, replay source at 5 fps (io_threads = cores, max_threads = 4)"
relay_e() { relay e --set relay.max_threads=4; }
start_server relay-e relay_e
echo 0 >"$OUT/e.threads"
sample_threads "$SERVER_PID" "$OUT/e.threads" & SAMPLER=$!
"$BIN/ds_loadgen" --url "ws://127.0.0.1:$PORT" --desktop bench-pc --viewers "$VIEWERS_E" \
  --seconds "$SECONDS_E" --warmup-seconds "$WARMUP" --source replay --frame "$FRAME" --fps 5 \
  --connect-timeout 60 --relay-pid "$SERVER_PID" --json-out "$OUT/e.json" || echo "run_fanout: scenario E failed (exit $?)"
kill "$SAMPLER" 2>/dev/null || true; wait "$SAMPLER" 2>/dev/null || true
cleanup
fi

if want F; then
echo "== F. search: most viewers at 1080p30 with every viewer >= 28 fps (from $SEARCH_FROM by $SEARCH_STEP)"
BEST=0
: >"$OUT/f.txt"
for n in $(seq "$SEARCH_FROM" "$SEARCH_STEP" "$SEARCH_MAX"); do
  start_server "relay-f$n" relay "f$n"
  "$BIN/ds_loadgen" --url "ws://127.0.0.1:$PORT" --desktop bench-pc --viewers "$n" \
    --seconds "$SECONDS_F" --warmup-seconds "$WARMUP" --source replay --frame "$FRAME" --fps 30 \
    --connect-timeout 60 --relay-pid "$SERVER_PID" --json-out "$OUT/f$n.json" || true
  cleanup
  MIN=$(sed -n 's/.*"viewerFps":{"min":\([0-9.]*\).*/\1/p' "$OUT/f$n.json" 2>/dev/null || true)
  echo "$n viewers: min viewer fps ${MIN:-?}, relay $(json_field "$OUT/f$n.json" relayCpuCores 2>/dev/null || echo ?) cores, load generator $(json_field "$OUT/f$n.json" loadgenCpuCores 2>/dev/null || echo ?) cores" | tee -a "$OUT/f.txt"
  if [ -z "$MIN" ] || awk -v m="$MIN" 'BEGIN { exit !(m < 28) }'; then break; fi
  BEST=$n
done
echo "most viewers at 1080p30 with every viewer >= 28 fps: $BEST (steps of $SEARCH_STEP)" | tee -a "$OUT/f.txt"
fi

B=$(json_field "$OUT/b.json" gbPerSecond 2>/dev/null || true)
C=$(json_field "$OUT/c.json" gbPerSecond 2>/dev/null || true)
echo "== summary"
if [ -n "$B" ] && [ -n "$C" ]; then
  awk -v b="$B" -v c="$C" 'BEGIN { printf "relay %.3f GB/s, ceiling %.3f GB/s, ratio %.2f (issue 13: >= 0.9)\n", b, c, (c > 0 ? b / c : 0) }'
else
  echo "ratio not available (scenario B or C produced no result)"
fi
latency_of() { sed -n 's/.*"p50":\([0-9.]*\),"p99":\([0-9.]*\).*/p50 \1 ms, p99 \2 ms/p' "$1" 2>/dev/null || true; }
echo "200 viewers at 30 fps: relay-added latency $(latency_of "$OUT/a.json"); bare Poco floor $(latency_of "$OUT/d.json")"
if [ -f "$OUT/e.json" ]; then
  echo "E. $VIEWERS_E viewers at 5 fps: viewer fps min $(sed -n 's/.*"viewerFps":{"min":\([0-9.]*\).*/\1/p' "$OUT/e.json"), relay threads max $(cat "$OUT/e.threads") (bound 2 x $(nproc) + 8 = $((2 * $(nproc) + 8))), peak RSS $(json_field "$OUT/e.json" relayPeakRssMb) MB, relay $(json_field "$OUT/e.json" relayCpuCores) cores"
fi
[ -f "$OUT/f.txt" ] && tail -n 1 "$OUT/f.txt"
for s in a b c d e; do
  echo "scenario $s: server $(json_field "$OUT/$s.json" relayCpuCores 2>/dev/null || echo ?) cores, load generator $(json_field "$OUT/$s.json" loadgenCpuCores 2>/dev/null || echo ?) cores"
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
