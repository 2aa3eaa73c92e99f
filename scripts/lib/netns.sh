#!/usr/bin/env bash
# Network fault harness for the fault tests (tests/faults, bench/soak): creates network
# namespaces joined by veth pairs, silently drops, slows or loses traffic on a link, and tears
# everything down. Needs root (CAP_NET_ADMIN), iproute2 and iptables.
#
# Topology for a prefix P (at most 8 characters, so interface names stay within 15):
#   P-r (the relay)  P-ra 10.203.17.1/30 <-> P-ar 10.203.17.2/30  P-a (agents)
#                    P-rv 10.203.17.5/30 <-> P-vr 10.203.17.6/30  P-v (viewers behind a link)
# The addresses exist only inside these namespaces; nothing is routed anywhere else.
#
# Use as a library (source it) or a command:
#   netns.sh up P | down P | partition P a|v | heal P a|v | impair P a|v DELAY_MS JITTER_MS LOSS_PCT
#   netns.sh clear P a|v | exec P r|a|v CMD...
# `impair` uses `tc netem` when the kernel has it; otherwise (no sch_netem, e.g. a minimal VM
# kernel) it falls back to a token-bucket rate limit whose queue adds the delay (tbf) and an
# iptables random drop for the loss, and says so on stderr.

NETNS_RELAY_ADDR_A=10.203.17.1
NETNS_AGENT_ADDR=10.203.17.2
NETNS_RELAY_ADDR_V=10.203.17.5
NETNS_VIEWER_ADDR=10.203.17.6

netns_name() { echo "$1-$2"; }

netns_up() {
  local p=$1
  [ ${#p} -le 8 ] || { echo "netns: prefix '$p' longer than 8 characters" >&2; return 1; }
  netns_down "$p" 2>/dev/null
  local ns
  for ns in r a v; do
    ip netns add "$p-$ns" || return 1
    ip -n "$p-$ns" link set lo up || return 1
  done
  ip link add "$p-ra" netns "$p-r" type veth peer name "$p-ar" netns "$p-a" || return 1
  ip link add "$p-rv" netns "$p-r" type veth peer name "$p-vr" netns "$p-v" || return 1
  ip -n "$p-r" addr add "$NETNS_RELAY_ADDR_A/30" dev "$p-ra" || return 1
  ip -n "$p-a" addr add "$NETNS_AGENT_ADDR/30" dev "$p-ar" || return 1
  ip -n "$p-r" addr add "$NETNS_RELAY_ADDR_V/30" dev "$p-rv" || return 1
  ip -n "$p-v" addr add "$NETNS_VIEWER_ADDR/30" dev "$p-vr" || return 1
  for ns in r a v; do ip -n "$p-$ns" link set up dev "$(netns_if_of "$p" "$ns" first)" || return 1; done
  ip -n "$p-r" link set up dev "$p-rv" || return 1
}

# The interface of namespace $2 on its link; for r, "first" is the agents' link.
netns_if_of() {
  case "$2" in
    r) echo "$1-ra" ;;
    a) echo "$1-ar" ;;
    v) echo "$1-vr" ;;
  esac
}
# The relay's interface on the link to namespace $2 (a or v).
netns_relay_if() { echo "$1-r$2"; }

netns_down() {
  local p=$1 ns
  for ns in r a v; do
    # Processes still inside would keep the namespace alive: end them (they are ours).
    local pids; pids=$(ip netns pids "$p-$ns" 2>/dev/null)
    [ -n "$pids" ] && kill -9 $pids 2>/dev/null
    ip netns del "$p-$ns" 2>/dev/null
  done
  return 0
}

# Silently drops everything on the link of namespace $2 (a or v), both directions, both ends:
# no RST, no ICMP, as when a cable is pulled or a NAT forgets the flow.
netns_partition() {
  local p=$1 side=$2
  local inner; inner=$(netns_if_of "$p" "$side")
  local outer; outer=$(netns_relay_if "$p" "$side")
  ip netns exec "$p-$side" iptables -w -I INPUT -i "$inner" -j DROP &&
  ip netns exec "$p-$side" iptables -w -I OUTPUT -o "$inner" -j DROP &&
  ip netns exec "$p-r" iptables -w -I INPUT -i "$outer" -j DROP &&
  ip netns exec "$p-r" iptables -w -I OUTPUT -o "$outer" -j DROP
}

netns_heal() {
  local p=$1 side=$2
  local inner; inner=$(netns_if_of "$p" "$side")
  local outer; outer=$(netns_relay_if "$p" "$side")
  while ip netns exec "$p-$side" iptables -w -D INPUT -i "$inner" -j DROP 2>/dev/null; do :; done
  while ip netns exec "$p-$side" iptables -w -D OUTPUT -o "$inner" -j DROP 2>/dev/null; do :; done
  while ip netns exec "$p-r" iptables -w -D INPUT -i "$outer" -j DROP 2>/dev/null; do :; done
  while ip netns exec "$p-r" iptables -w -D OUTPUT -o "$outer" -j DROP 2>/dev/null; do :; done
  return 0
}

netns_has_netem() {
  ip netns exec "$1-a" tc qdisc replace dev "$1-ar" root netem delay 1ms >/dev/null 2>&1 || return 1
  ip netns exec "$1-a" tc qdisc del dev "$1-ar" root >/dev/null 2>&1
  return 0
}

# Delay (ms, ± jitter ms) and random loss (percent) in both directions of the link of $2.
netns_impair() {
  local p=$1 side=$2 delay=$3 jitter=$4 loss=$5
  local inner; inner=$(netns_if_of "$p" "$side")
  local outer; outer=$(netns_relay_if "$p" "$side")
  netns_clear "$p" "$side"
  if netns_has_netem "$p"; then
    ip netns exec "$p-$side" tc qdisc replace dev "$inner" root netem delay "${delay}ms" "${jitter}ms" loss "${loss}%" &&
    ip netns exec "$p-r" tc qdisc replace dev "$outer" root netem delay "${delay}ms" "${jitter}ms" loss "${loss}%"
    return
  fi
  echo "netns: tc netem is not available in this kernel; impairing with tbf (queueing delay) + iptables random loss" >&2
  # A 1 Mbit/s bucket whose queue may hold up to $delay ms (+ jitter) of data: a stream faster
  # than the rate waits in the queue for about that long; the excess is dropped, as on a slow
  # uplink. The loss is a per-packet random drop in each direction.
  local prob; prob=$(awk -v l="$loss" 'BEGIN { printf "%.4f", l / 100 }')
  ip netns exec "$p-$side" tc qdisc replace dev "$inner" root tbf rate 1mbit burst 16kb latency "$((delay + jitter))ms" &&
  ip netns exec "$p-r" tc qdisc replace dev "$outer" root tbf rate 1mbit burst 16kb latency "$((delay + jitter))ms" &&
  ip netns exec "$p-$side" iptables -w -I OUTPUT -o "$inner" -m statistic --mode random --probability "$prob" -j DROP &&
  ip netns exec "$p-r" iptables -w -I OUTPUT -o "$outer" -m statistic --mode random --probability "$prob" -j DROP
}

netns_clear() {
  local p=$1 side=$2
  local inner; inner=$(netns_if_of "$p" "$side")
  local outer; outer=$(netns_relay_if "$p" "$side")
  ip netns exec "$p-$side" tc qdisc del dev "$inner" root >/dev/null 2>&1
  ip netns exec "$p-r" tc qdisc del dev "$outer" root >/dev/null 2>&1
  local rule
  for rule in "$p-$side:$inner" "$p-r:$outer"; do
    while ip netns exec "${rule%%:*}" iptables -w -D OUTPUT -o "${rule#*:}" -m statistic --mode random \
      --probability "$(ip netns exec "${rule%%:*}" iptables -w -S OUTPUT | sed -n 's/.*--probability \([0-9.]*\).*/\1/p' | head -n 1)" \
      -j DROP 2>/dev/null; do :; done
  done
  netns_heal "$p" "$side"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -u
  cmd=${1:-}
  shift || true
  case "$cmd" in
    up|down|partition|heal|impair|clear) "netns_$cmd" "$@" ;;
    exec) p=$1 ns=$2; shift 2; exec ip netns exec "$p-$ns" "$@" ;;
    *) echo "usage: netns.sh up|down|partition|heal|impair|clear|exec PREFIX [a|v] ..." >&2; exit 2 ;;
  esac
fi
