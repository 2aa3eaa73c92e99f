#!/usr/bin/env bash
# Agent throughput (issue 5): frames per second the deskstream agent captures, encodes (JPEG
# quality 75, 1920x1080) and gets through a relay to one viewer, next to
# `ffmpeg -f x11grab -c:v mjpeg -f null` on an Xvfb display in the same run.
#
#   bench/relay/run_agent_throughput.sh [BUILD_DIR]    (default: build/bench-relay, Release)
#
# Environment: SECONDS_RUN (measured seconds, default 10), CAPTURE (agent capture plugin,
# default synthetic: the x11 plugin sends only changed pictures and the picture here is still;
# bench/capture/run.sh measures x11 on a moving picture), INSTALL=1 to apt-get install xvfb and ffmpeg for this
# benchmark only (they are not CI dependencies). Without Xvfb or ffmpeg the ffmpeg half is
# reported as not measured.
#
# The agent runs with [agent] fps = 1000 (the schema's maximum), i.e. uncapped for 1080p: it
# captures and encodes as fast as the slower pipeline stage and the ack window allow.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${1:-$ROOT/build/bench-relay}
SECONDS_RUN=${SECONDS_RUN:-10}
OUT=${OUT:-$(mktemp -d /tmp/ds-agent-XXXXXX)}
PNG=$ROOT/../shared/data/desktop-1080p.png
mkdir -p "$OUT"

if [ "${INSTALL:-0}" = 1 ] && { ! command -v Xvfb >/dev/null || ! command -v ffmpeg >/dev/null; }; then
  echo "== installing xvfb and ffmpeg (benchmark only)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends xvfb ffmpeg >/dev/null
fi

TARGETS=(deskstream deskstream_capture_synthetic deskstream_encoder_jpeg deskstream_store_sqlite
         ds_loadgen)
if [ ! -x "$BUILD/host/deskstream" ] || [ ! -x "$BUILD/bench/relay/ds_loadgen" ] ||
   [ ! -f "$BUILD/plugins/deskstream_encoder_jpeg.so" ]; then
  echo "== building (Release) in $BUILD"
  cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DDESKSTREAM_SANITIZE=OFF \
        -DDESKSTREAM_AREAS="core;host;relay;capture;encoders;stores;integration" >/dev/null
  cmake --build "$BUILD" -j2 --target "${TARGETS[@]}"
fi
CAPTURE=${CAPTURE:-synthetic}

PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

echo "== $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"

# ---- an Xvfb display showing the test picture (for x11 capture and for ffmpeg)
DISPLAY_NUM=""
if command -v Xvfb >/dev/null; then
  Xvfb -displayfd 3 -screen 0 1920x1080x24 -nolisten tcp 3>"$OUT/display" 2>"$OUT/xvfb.err" &
  PIDS+=($!)
  for _ in $(seq 1 50); do DISPLAY_NUM=$(cat "$OUT/display" 2>/dev/null || true); [ -n "$DISPLAY_NUM" ] && break; sleep 0.1; done
  if [ -n "$DISPLAY_NUM" ] && command -v ffplay >/dev/null && [ -f "$PNG" ]; then
    # The picture on screen: a black root would flatter both encoders.
    DISPLAY=:$DISPLAY_NUM SDL_AUDIODRIVER=dummy ffplay -loglevel quiet -noborder -left 0 -top 0 \
      -x 1920 -y 1080 "$PNG" >/dev/null 2>&1 &
    PIDS+=($!)
    sleep 2
  fi
  if [ -n "$DISPLAY_NUM" ] && command -v ffmpeg >/dev/null; then
    # Evidence of what is on screen (a black screen would give a tiny PNG).
    ffmpeg -hide_banner -nostdin -loglevel error -f x11grab -video_size 1920x1080 -i ":$DISPLAY_NUM" \
      -frames:v 1 -y "$OUT/screen.png" && echo "== Xvfb :$DISPLAY_NUM screen grab: $(stat -c %s "$OUT/screen.png") bytes PNG ($OUT/screen.png)"
  fi
fi
[ "$CAPTURE" = x11 ] && [ -z "$DISPLAY_NUM" ] && { echo "run_agent_throughput: x11 capture needs Xvfb" >&2; exit 1; }

# ---- deskstream: relay (deskstream --role relay) + agent uncapped + one viewer
mkdir -p "$OUT/relay-state"
timeout $((SECONDS_RUN + 90)) "$BUILD/host/deskstream" --role relay --set relay.listen=127.0.0.1:0 \
  --set host.plugins.path="$BUILD/plugins" --set host.state_dir="$OUT/relay-state" \
  --set host.log.level=warning >"$OUT/relay.out" 2>"$OUT/relay.err" &
PIDS+=($!)
PORT=""
for _ in $(seq 1 100); do PORT=$(sed -n 's#^viewer: http://[^:]*:\([0-9]*\)/$#\1#p' "$OUT/relay.out" 2>/dev/null || true); [ -n "$PORT" ] && break; sleep 0.1; done
[ -n "$PORT" ] || { echo "run_agent_throughput: relay did not start" >&2; cat "$OUT/relay.err" >&2; exit 1; }
mkdir -p "$OUT/agent-state"
DISPLAY=${DISPLAY_NUM:+:$DISPLAY_NUM} timeout $((SECONDS_RUN + 60)) "$BUILD/host/deskstream" --role agent \
  --set host.plugins.path="$BUILD/plugins" --set host.state_dir="$OUT/agent-state" \
  --set agent.relay_url="ws://127.0.0.1:$PORT/ws/agent" --set agent.client_id=bench-agent \
  --set agent.capture="$CAPTURE" --set agent.encoder=jpeg --set agent.fps=1000 \
  --set agent.quality=75 --set agent.quality.min=75 --set agent.quality.max=75 \
  >"$OUT/agent.log" 2>&1 &
PIDS+=($!)
AGENT_PID=""  # the deskstream process under `timeout` (its CPU is what we measure)
for _ in $(seq 1 50); do AGENT_PID=$(pgrep -P "${PIDS[-1]}" -x deskstream || true); [ -n "$AGENT_PID" ] && break; sleep 0.1; done
[ -n "$AGENT_PID" ] || { echo "run_agent_throughput: the agent did not start" >&2; cat "$OUT/agent.log" >&2; exit 1; }
# The viewer can subscribe only once the agent is registered.
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$PORT/api/desktops" 2>/dev/null | grep -q '"bench-agent"' && break
  sleep 0.1
done
echo "== deskstream agent (capture $CAPTURE, jpeg q75, [agent] fps = 1000, uncapped) -> relay -> 1 viewer"
"$BUILD/bench/relay/ds_loadgen" --url "ws://127.0.0.1:$PORT" --desktop bench-agent --viewers 1 \
  --seconds "$SECONDS_RUN" --warmup-seconds 3 --relay-pid "$AGENT_PID" --json-out "$OUT/agent.json" |
  sed 's/relay process/agent process/' || echo "run_agent_throughput: agent measurement failed (exit $?)"
AGENT_FPS=$(sed -n 's/.*"median":\([0-9.]*\).*/\1/p' "$OUT/agent.json" 2>/dev/null || true)
AGENT_CPU=$(sed -n 's/.*"relayCpuCores":\([0-9.]*\).*/\1/p' "$OUT/agent.json" 2>/dev/null || true)
AGENT_BYTES=$(sed -n 's/.*"gbPerSecond":\([0-9.]*\).*/\1/p' "$OUT/agent.json" 2>/dev/null || true)
kill "$AGENT_PID" 2>/dev/null || true

# ---- ffmpeg on the same display
FF_FPS=""
FF_CPU=""
if [ -n "$DISPLAY_NUM" ] && command -v ffmpeg >/dev/null; then
  echo "== ffmpeg -f x11grab -framerate 1000 -video_size 1920x1080 -i :$DISPLAY_NUM -c:v mjpeg -f null - (${SECONDS_RUN} s)"
  # bash's `time` gives wall, user and system seconds: fps and CPU cores of the same run.
  TIMEFORMAT='%R %U %S'
  { time ffmpeg -hide_banner -nostdin -loglevel error -stats -f x11grab -framerate 1000 \
      -video_size 1920x1080 -i ":$DISPLAY_NUM" -t "$SECONDS_RUN" -c:v mjpeg -f null - \
      2>"$OUT/ffmpeg.err"; } 2>"$OUT/ffmpeg.time" || echo "run_agent_throughput: ffmpeg failed: $(tail -2 "$OUT/ffmpeg.err")"
  frames=$(tr '\r' '\n' <"$OUT/ffmpeg.err" | sed -n 's/^frame= *\([0-9]*\).*/\1/p' | tail -1)
  read -r wall user sys <"$OUT/ffmpeg.time" || true
  if [ -n "$frames" ] && [ -n "${wall:-}" ]; then
    FF_FPS=$(awk -v f="$frames" -v w="$wall" 'BEGIN { printf "%.1f", f / w }')
    FF_CPU=$(awk -v u="$user" -v s="$sys" -v w="$wall" 'BEGIN { printf "%.2f", (u + s) / w }')
    echo "ffmpeg: $frames frames in $wall s = $FF_FPS fps, $FF_CPU cores"
  fi
else
  echo "== ffmpeg x11grab: not measured (needs Xvfb and ffmpeg: INSTALL=1 $0)"
fi

echo "== summary"
echo "deskstream agent ($CAPTURE capture): ${AGENT_FPS:-n/a} fps uncapped ([agent] fps = 1000), ${AGENT_CPU:-n/a} cores, ${AGENT_BYTES:-n/a} GB/s"
echo "ffmpeg x11grab mjpeg: ${FF_FPS:-n/a} fps, ${FF_CPU:-n/a} cores"
if [ -n "$AGENT_FPS" ] && [ -n "$FF_FPS" ]; then
  if [ "$CAPTURE" = x11 ]; then
    awk -v a="$AGENT_FPS" -v f="$FF_FPS" 'BEGIN { printf "ratio agent / ffmpeg, same X11 source: %.2f (aim >= 2)\n", a / f }'
  else
    # Not like for like: the agent encodes the synthetic plugin's picture and pays no X server
    # round trip, ffmpeg grabs the X display. Labelled so until the x11 capture plugin exists.
    awk -v a="$AGENT_FPS" -v f="$FF_FPS" 'BEGIN { printf "SYNTHETIC comparison (agent: synthetic capture, ffmpeg: x11grab; not the same source): ratio %.2f\n", a / f }'
  fi
fi
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
