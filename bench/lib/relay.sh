# Shared by the bench scripts: start a deskstream relay on a free loopback port.
# Source it, then: start_relay BUILD OUT NAME. The relay runs in the background with its state in
# OUT/relay-state, output in OUT/relay.out and OUT/relay.err; its PID is appended to the caller's
# PIDS array (the caller's cleanup trap stops it) and its port is left in PORT. NAME prefixes the
# error when it does not start.
start_relay() {
  local build=$1 out=$2 name=$3
  mkdir -p "$out/relay-state"
  "$build/host/deskstream" --role relay --set relay.listen=127.0.0.1:0 \
    --set host.plugins.path="$build/plugins" --set host.state_dir="$out/relay-state" \
    --set host.log.level=warning >"$out/relay.out" 2>"$out/relay.err" &
  PIDS+=($!)
  PORT=""
  for _ in $(seq 1 100); do
    PORT=$(sed -n 's#^viewer: http://[^:]*:\([0-9]*\)/$#\1#p' "$out/relay.out" 2>/dev/null || true)
    [ -n "$PORT" ] && break
    sleep 0.1
  done
  [ -n "$PORT" ] || { echo "$name: relay did not start" >&2; cat "$out/relay.err" >&2; exit 1; }
}
