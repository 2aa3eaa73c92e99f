#!/usr/bin/env bash
# Damage-driven streaming against full frames (issue 11): for each synthetic scenario (still,
# typing, scrolling, video, moving), the bytes per second and frames per second one viewer
# receives, and the agent's CPU, with `[agent] encoding = damage` and with `encoding = full`, at
# the same fps ceiling, in the same run, against the same relay. Prints one table and the ratios.
#
#   bench/damage/run.sh BUILD_DIR            (a Release build: cmake --preset release)
#
# The relay (`deskstream --role relay`, SQLite) and each agent (`deskstream --role agent`,
# synthetic capture at 1920x1080, JPEG main encoder, WebP lossless for text) run on 127.0.0.1;
# ds_damage_viewer subscribes and acks like the browser. Agent CPU is user+system time from
# /proc/<pid>/stat over the measured window. Environment: SECONDS_RUN (default 10), WARMUP
# (seconds after subscribing, default 3), FPS (the ceiling, default 30), SCENARIOS.
set -euo pipefail

BUILD=$(cd "${1:?usage: $0 BUILD_DIR}" && pwd)
# shellcheck source=../lib/relay.sh
source "$(dirname "$0")/../lib/relay.sh"
SECONDS_RUN=${SECONDS_RUN:-10}
WARMUP=${WARMUP:-3}
FPS=${FPS:-30}
SCENARIOS=${SCENARIOS:-still typing scrolling video moving}
OUT=$(mktemp -d /tmp/ds-damage-XXXXXX)
VIEWER="$BUILD/bench/damage/ds_damage_viewer"
[ -x "$VIEWER" ] || { echo "run.sh: $VIEWER missing (build target ds_damage_viewer)" >&2; exit 1; }

PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

cpu_ticks() { awk '{ print $14 + $15 }' /proc/"$1"/stat; }
HZ=$(getconf CLK_TCK)

echo "== $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== $BUILD, fps ceiling $FPS, ${WARMUP} s warm-up, ${SECONDS_RUN} s measured per run"
start_relay "$BUILD" "$OUT" run.sh

# measure SCENARIO ENCODING: sets BPS FRAMES CPU P50
measure() {
  local scenario=$1 encoding=$2 id="dmg-$1-$2"
  mkdir -p "$OUT/$id-state"
  "$BUILD/host/deskstream" --role agent --set host.plugins.path="$BUILD/plugins" \
    --set host.state_dir="$OUT/$id-state" --set agent.relay_url="ws://127.0.0.1:$PORT/ws/agent" \
    --set agent.client_id="$id" --set agent.capture=synthetic --set agent.encoder=jpeg \
    --set agent.encoding="$encoding" --set agent.fps="$FPS" \
    --set capture.synthetic.scenario="$scenario" --set host.log.level=warning >"$OUT/$id.log" 2>&1 &
  local pid=$!
  PIDS+=("$pid")
  local registered=""
  for _ in $(seq 1 200); do
    if curl -fsS "http://127.0.0.1:$PORT/api/desktops" 2>/dev/null | grep -q "\"$id\""; then registered=1; break; fi
    sleep 0.1
  done
  [ -n "$registered" ] || { echo "run.sh: agent $id did not register" >&2; cat "$OUT/$id.log" >&2; exit 1; }
  "$VIEWER" --url "ws://127.0.0.1:$PORT" --desktop "$id" --warmup-seconds "$WARMUP" \
    --seconds "$SECONDS_RUN" >"$OUT/$id.json" &
  local viewer=$!
  sleep "$WARMUP"
  local c0 c1
  c0=$(cpu_ticks "$pid")
  wait "$viewer"
  c1=$(cpu_ticks "$pid")
  CPU=$(awk -v a="$c0" -v b="$c1" -v hz="$HZ" -v t="$SECONDS_RUN" 'BEGIN { printf "%.4f", (b - a) / hz / t }')
  BPS=$(sed -n 's/.*"bytesPerSecond":\([0-9.]*\).*/\1/p' "$OUT/$id.json")
  FRAMES=$(sed -n 's/.*"framesPerSecond":\([0-9.]*\).*/\1/p' "$OUT/$id.json")
  P50=$(sed -n 's/.*"latencyP50Ms":\([-0-9.]*\).*/\1/p' "$OUT/$id.json")
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

printf '%-10s | %-8s | %12s | %9s | %10s | %12s\n' scenario encoding "KB/s" "frames/s" "agent CPU" "latency p50"
printf '%s\n' "-----------|----------|--------------|-----------|------------|-------------"
SUMMARY=()
for s in $SCENARIOS; do
  measure "$s" damage
  DB=$BPS DC=$CPU
  printf '%-10s | %-8s | %12.1f | %9.2f | %9.1f%% | %9.1f ms\n' "$s" damage "$(awk -v b="$BPS" 'BEGIN{print b/1024}')" "$FRAMES" "$(awk -v c="$CPU" 'BEGIN{print c*100}')" "$P50"
  measure "$s" full
  FB=$BPS FC=$CPU
  printf '%-10s | %-8s | %12.1f | %9.2f | %9.1f%% | %9.1f ms\n' "$s" full "$(awk -v b="$BPS" 'BEGIN{print b/1024}')" "$FRAMES" "$(awk -v c="$CPU" 'BEGIN{print c*100}')" "$P50"
  SUMMARY+=("$(awk -v s="$s" -v db="$DB" -v fb="$FB" -v dc="$DC" -v fc="$FC" 'BEGIN {
    br = (db > 0) ? sprintf("%.0fx fewer bytes", fb / db) : "0 bytes with damage (full: " sprintf("%.0f", fb / 1024) " KB/s)";
    cr = (dc > 0) ? sprintf("%.1fx less agent CPU", fc / dc) : "no agent CPU measured with damage";
    printf "%-10s damage vs full: %s, %s", s, br, cr }')")
done
echo
for line in "${SUMMARY[@]}"; do echo "$line"; done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
