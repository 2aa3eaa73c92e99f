#!/usr/bin/env bash
# Capture benchmark (issue 10): the x11 capture plugin and the agent built on it, against
# ffmpeg's x11grab on the same Xvfb display in the same run (docs/performance.md, "Capture").
#
#   bench/capture/run.sh [BUILD_DIR]    (default: build/release; built here when missing)
#
# A full-screen moving picture plays on Xvfb 1920x1080x24: GStreamer's SMPTE bars scrolling
# sideways (every pixel changes every frame), as fast as ximagesink can show them (sync=false),
# so no grabber below is capped by the picture. Then, one after the other, SECONDS_RUN each
# (default 10):
#   1. ds_capture_grab_rate: x11 plugin frames per second, each frame released at once:
#      a. as the picture changes (distinct pictures only: at most the picture's own rate);
#      b. with --poke-display (one pixel changed before each grab, so every grab does its full
#         work): the grab path's capacity;
#   2. ffmpeg -f x11grab -framerate 1000 -c:v rawvideo -f null -      (the baseline of 1b);
#   3. deskstream --role relay + --role agent (capture x11, jpeg quality fixed at 75,
#      [agent] fps = 1000, i.e. uncapped) + one acknowledging viewer (ds_loadgen);
#   4. ffmpeg -f x11grab -framerate 1000 -c:v mjpeg -q:v 5 -f null -  (the baseline of 3).
# ffmpeg gets -framerate 1000 because x11grab otherwise paces itself to 29.97 fps.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${1:-$ROOT/build/release}
SECONDS_RUN=${SECONDS_RUN:-10}
OUT=${OUT:-$(mktemp -d /tmp/ds-capture-bench-XXXXXX)}
mkdir -p "$OUT"

TARGETS=(deskstream deskstream_capture_x11 deskstream_encoder_jpeg deskstream_store_sqlite ds_loadgen
         ds_capture_grab_rate)
if [ ! -x "$BUILD/host/deskstream" ] || [ ! -x "$BUILD/bench/relay/ds_loadgen" ] ||
   [ ! -x "$BUILD/bench/capture/ds_capture_grab_rate" ] || [ ! -f "$BUILD/plugins/deskstream_capture_x11.so" ]; then
  echo "== building (Release) in $BUILD"
  cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DDESKSTREAM_SANITIZE=OFF \
        -DDESKSTREAM_BUILD_BENCH=ON >/dev/null
  cmake --build "$BUILD" -j2 --target "${TARGETS[@]}"
fi
for tool in gst-launch-1.0 ffmpeg Xvfb; do
  command -v "$tool" >/dev/null || { echo "capture bench: $tool is missing (scripts/bootstrap.sh installs it)" >&2; exit 1; }
done

source "$ROOT/scripts/lib/xvfb.sh"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  xvfb_test_stop
}
trap cleanup EXIT

echo "== $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
xvfb_test_start 1920x1080x24
D=$DESKSTREAM_TEST_X11_DISPLAY

# ---- the moving picture
DISPLAY=$D gst-launch-1.0 -q videotestsrc pattern=smpte horizontal-speed=8 \
  ! video/x-raw,width=1920,height=1080,framerate=1000/1 ! videoconvert ! ximagesink sync=false \
  >"$OUT/gst.log" 2>&1 &
PIDS+=($!)
sleep 3
kill -0 "${PIDS[-1]}" 2>/dev/null || { echo "capture bench: the GStreamer picture did not start:" >&2; cat "$OUT/gst.log" >&2; exit 1; }

TIMEFORMAT='%R %U %S'
# ffmpeg_rate CODEC_ARGS... : frames per second and CPU cores of one ffmpeg x11grab run.
ffmpeg_rate() {
  local name=$1; shift
  { time ffmpeg -hide_banner -nostdin -loglevel error -stats -f x11grab -framerate 1000 -video_size 1920x1080 \
      -i "$D" -t "$SECONDS_RUN" "$@" -f null - 2>"$OUT/$name.err"; } 2>"$OUT/$name.time" ||
    { echo "capture bench: ffmpeg failed: $(tail -2 "$OUT/$name.err")" >&2; return 1; }
  local frames wall user sys
  frames=$(tr '\r' '\n' <"$OUT/$name.err" | sed -n 's/^frame= *\([0-9]*\).*/\1/p' | tail -1)
  read -r wall user sys <"$OUT/$name.time"
  awk -v f="$frames" -v w="$wall" -v u="$user" -v s="$sys" 'BEGIN { printf "%.1f %.2f %d %.1f\n", f / w, (u + s) / w, f, w }'
}

# ---- 1. x11 grab rate: a. the picture's distinct frames, b. every grab a full one (poked)
echo "== 1a. ds_capture_grab_rate, x11 plugin, monitor 0 (${SECONDS_RUN} s after 2 s warm-up)"
"$BUILD/bench/capture/ds_capture_grab_rate" --plugin "$BUILD/plugins/deskstream_capture_x11.so" \
  --set display="$D" --seconds "$SECONDS_RUN" --warmup-seconds 2 >"$OUT/grab.json" 2>"$OUT/grab.err"
cat "$OUT/grab.json"
PICTURE_FPS=$(sed -n 's/.*"fps":\([0-9.]*\).*/\1/p' "$OUT/grab.json")
echo "== 1b. the same with --poke-display $D (${SECONDS_RUN} s after 2 s warm-up)"
"$BUILD/bench/capture/ds_capture_grab_rate" --plugin "$BUILD/plugins/deskstream_capture_x11.so" \
  --set display="$D" --seconds "$SECONDS_RUN" --warmup-seconds 2 --poke-display "$D" \
  >"$OUT/grab-poked.json" 2>"$OUT/grab-poked.err"
cat "$OUT/grab-poked.json"
GRAB_FPS=$(sed -n 's/.*"fps":\([0-9.]*\).*/\1/p' "$OUT/grab-poked.json")
GRAB_CPU=$(sed -n 's/.*"cpuCores":\([0-9.]*\).*/\1/p' "$OUT/grab-poked.json")

# ---- 2. ffmpeg rawvideo
echo "== 2. ffmpeg -f x11grab -framerate 1000 -video_size 1920x1080 -i $D -c:v rawvideo -f null - (${SECONDS_RUN} s)"
read -r RAW_FPS RAW_CPU RAW_FRAMES RAW_WALL < <(ffmpeg_rate raw -c:v rawvideo)
echo "ffmpeg rawvideo: $RAW_FRAMES frames in $RAW_WALL s = $RAW_FPS fps, $RAW_CPU cores"

# ---- 3. the agent, uncapped, through a relay to one acknowledging viewer
mkdir -p "$OUT/relay-state" "$OUT/agent-state"
timeout $((SECONDS_RUN + 90)) "$BUILD/host/deskstream" --role relay --set relay.listen=127.0.0.1:0 \
  --set host.plugins.path="$BUILD/plugins" --set host.state_dir="$OUT/relay-state" \
  --set host.log.level=warning >"$OUT/relay.out" 2>"$OUT/relay.err" &
PIDS+=($!)
PORT=""
for _ in $(seq 1 100); do PORT=$(sed -n 's#^viewer: http://[^:]*:\([0-9]*\)/$#\1#p' "$OUT/relay.out" 2>/dev/null || true); [ -n "$PORT" ] && break; sleep 0.1; done
[ -n "$PORT" ] || { echo "capture bench: relay did not start" >&2; cat "$OUT/relay.err" >&2; exit 1; }
timeout $((SECONDS_RUN + 60)) "$BUILD/host/deskstream" --role agent \
  --set host.plugins.path="$BUILD/plugins" --set host.state_dir="$OUT/agent-state" \
  --set agent.relay_url="ws://127.0.0.1:$PORT/ws/agent" --set agent.client_id=bench-x11 \
  --set agent.capture=x11 --set capture.x11.display="$D" --set agent.encoder=jpeg --set agent.fps=1000 \
  --set agent.quality=75 --set agent.quality.min=75 --set agent.quality.max=75 \
  >"$OUT/agent.log" 2>&1 &
PIDS+=($!)
AGENT_PID=""
for _ in $(seq 1 50); do AGENT_PID=$(pgrep -P "${PIDS[-1]}" -x deskstream || true); [ -n "$AGENT_PID" ] && break; sleep 0.1; done
[ -n "$AGENT_PID" ] || { echo "capture bench: the agent did not start" >&2; cat "$OUT/agent.log" >&2; exit 1; }
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$PORT/api/desktops" 2>/dev/null | grep -q '"bench-x11"' && break
  sleep 0.1
done
echo "== 3. deskstream agent (capture x11, jpeg q75, [agent] fps = 1000) -> relay -> 1 viewer (${SECONDS_RUN} s after 3 s warm-up)"
"$BUILD/bench/relay/ds_loadgen" --url "ws://127.0.0.1:$PORT" --desktop bench-x11 --viewers 1 \
  --seconds "$SECONDS_RUN" --warmup-seconds 3 --relay-pid "$AGENT_PID" --json-out "$OUT/agent.json" |
  sed 's/relay process/agent process/' || echo "capture bench: agent measurement failed (exit $?)"
AGENT_FPS=$(sed -n 's/.*"median":\([0-9.]*\).*/\1/p' "$OUT/agent.json" 2>/dev/null || true)
AGENT_CPU=$(sed -n 's/.*"relayCpuCores":\([0-9.]*\).*/\1/p' "$OUT/agent.json" 2>/dev/null || true)
kill "$AGENT_PID" 2>/dev/null || true

# ---- 4. ffmpeg mjpeg
echo "== 4. ffmpeg -f x11grab -framerate 1000 -video_size 1920x1080 -i $D -c:v mjpeg -q:v 5 -f null - (${SECONDS_RUN} s)"
read -r MJPEG_FPS MJPEG_CPU MJPEG_FRAMES MJPEG_WALL < <(ffmpeg_rate mjpeg -c:v mjpeg -q:v 5)
echo "ffmpeg mjpeg: $MJPEG_FRAMES frames in $MJPEG_WALL s = $MJPEG_FPS fps, $MJPEG_CPU cores"

echo "== summary ($OUT)"
echo "x11 distinct pictures of the moving picture: ${PICTURE_FPS:-n/a} fps"
echo "x11 grab (poked): ${GRAB_FPS:-n/a} fps (${GRAB_CPU:-n/a} cores in the grabbing process); ffmpeg rawvideo: $RAW_FPS fps ($RAW_CPU cores)"
awk -v a="${GRAB_FPS:-0}" -v f="$RAW_FPS" 'BEGIN { if (f > 0) printf "ratio x11 grab / ffmpeg rawvideo: %.2f\n", a / f }'
echo "agent (x11, jpeg q75, uncapped): ${AGENT_FPS:-n/a} fps (${AGENT_CPU:-n/a} cores); ffmpeg mjpeg -q:v 5: $MJPEG_FPS fps ($MJPEG_CPU cores)"
awk -v a="${AGENT_FPS:-0}" -v f="$MJPEG_FPS" 'BEGIN { if (f > 0) printf "ratio agent / ffmpeg mjpeg: %.2f (aim >= 2.5)\n", a / f }'
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
