#!/usr/bin/env bash
# Idle agent wakeups: how often a registered agent that nobody watches wakes up, measured as the
# voluntary context switches per second summed over the agent process's threads (each sleep
# that ends is one). The agent (`deskstream --role agent`, synthetic capture, JPEG) runs against
# a relay (`deskstream --role relay`, SQLite) on 127.0.0.1 with the default heartbeat (5 s);
# nothing subscribes, so the agent must capture and encode nothing and should only wake for its
# heartbeat ping, its agent_stats message and the relay's pings. The figure compared is the
# agent's threads (every thread but the process's main thread, which runs host/src/main.cpp's
# wait for a stop signal); the whole process is printed too.
#
#   bench/agent/run_idle_wakeups.sh BUILD_DIR [BASELINE_BUILD_DIR]
#
# With a baseline build (e.g. the previous commit built elsewhere), its agent is measured in the
# same run against the same relay, and the ratio is printed. Environment: SECONDS_RUN (measured
# seconds, default 20), WARMUP (seconds after registration, default 3).
set -euo pipefail

BUILD=$(cd "${1:?usage: $0 BUILD_DIR [BASELINE_BUILD_DIR]}" && pwd)
# shellcheck source=../lib/relay.sh
source "$(dirname "$0")/../lib/relay.sh"
BASE=${2:+$(cd "$2" && pwd)}
SECONDS_RUN=${SECONDS_RUN:-20}
WARMUP=${WARMUP:-3}
OUT=$(mktemp -d /tmp/ds-idle-XXXXXX)

PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

switches() {  # voluntary context switches of every thread of process $1
  cat /proc/"$1"/task/*/status 2>/dev/null | awk '/^voluntary_ctxt_switches/ { s += $2 } END { print s + 0 }'
}
main_switches() {  # ... of its main thread only (host/src/main.cpp's wait for a stop, not the agent)
  awk '/^voluntary_ctxt_switches/ { print $2 }' /proc/"$1"/task/"$1"/status 2>/dev/null || echo 0
}

echo "== $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
start_relay "$BUILD" "$OUT" run_idle_wakeups

# measure NAME BUILD: prints "NAME: <threads> threads, <rate> wakeups/s" and sets RATE.
measure() {
  local name=$1 build=$2
  mkdir -p "$OUT/$name-state"
  "$build/host/deskstream" --role agent --set host.plugins.path="$build/plugins" \
    --set host.state_dir="$OUT/$name-state" --set agent.relay_url="ws://127.0.0.1:$PORT/ws/agent" \
    --set agent.client_id="idle-$name" --set agent.capture=synthetic --set agent.encoder=jpeg \
    --set host.log.level=warning >"$OUT/$name.log" 2>&1 &
  local pid=$!
  PIDS+=("$pid")
  local registered=""
  for _ in $(seq 1 200); do
    if curl -fsS "http://127.0.0.1:$PORT/api/desktops" 2>/dev/null | grep -q "\"idle-$name\""; then registered=1; break; fi
    sleep 0.1
  done
  [ -n "$registered" ] || { echo "run_idle_wakeups: agent $name did not register" >&2; cat "$OUT/$name.log" >&2; exit 1; }
  sleep "$WARMUP"
  local s0 s1 m0 m1 threads total
  s0=$(switches "$pid"); m0=$(main_switches "$pid")
  sleep "$SECONDS_RUN"
  s1=$(switches "$pid"); m1=$(main_switches "$pid")
  threads=$(ls /proc/"$pid"/task | wc -l)
  total=$(awk -v a="$s0" -v b="$s1" -v t="$SECONDS_RUN" 'BEGIN { printf "%.1f", (b - a) / t }')
  RATE=$(awk -v a="$s0" -v b="$s1" -v c="$m0" -v d="$m1" -v t="$SECONDS_RUN" 'BEGIN { printf "%.2f", ((b - a) - (d - c)) / t }')
  echo "$name agent: $threads threads; voluntary context switches/s while idle (over ${SECONDS_RUN} s):" \
       "$RATE in the agent's threads, $total in the whole process (with the main thread)"
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

measure current "$BUILD"
CURRENT=$RATE
if [ -n "$BASE" ]; then
  measure baseline "$BASE"
  awk -v c="$CURRENT" -v b="$RATE" 'BEGIN { printf "ratio current / baseline: %.3f\n", (b > 0 ? c / b : 0) }'
fi
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
