# Starts and stops a private PipeWire session for the tests: a D-Bus session bus, pipewire and
# wireplumber, all in a temporary XDG_RUNTIME_DIR, so nothing on the machine is used or changed.
# Source this file, then: pw_test_start; ...; pw_test_stop
# Exports XDG_RUNTIME_DIR, DBUS_SESSION_BUS_ADDRESS and DESKSTREAM_TEST_PIPEWIRE=1 (tests that
# need the daemon fail when it is not set). Works as root (the daemons run in the caller's
# session; no seat, no audio device is needed).

pw_test_start() {
  local b
  for b in dbus-daemon pipewire wireplumber pw-cli; do
    command -v "$b" >/dev/null || { echo "pipewire: '$b' is not installed (scripts/bootstrap.sh installs it)" >&2; return 1; }
  done
  PW_TEST_DIR=$(mktemp -d /tmp/deskstream-pw.XXXXXX)
  chmod 700 "$PW_TEST_DIR"
  export XDG_RUNTIME_DIR="$PW_TEST_DIR"
  # Keep the daemons away from the user's own configuration and state.
  export XDG_CONFIG_HOME="$PW_TEST_DIR/config" XDG_STATE_HOME="$PW_TEST_DIR/state"
  unset PIPEWIRE_REMOTE PIPEWIRE_RUNTIME_DIR

  # A session bus without service files: nothing installed on the machine (a desktop portal,
  # for instance) is activated on it, so runs are the same everywhere and leave no process.
  cat >"$PW_TEST_DIR/bus.conf" <<EOC
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path=$PW_TEST_DIR/bus</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
EOC
  dbus-daemon --config-file="$PW_TEST_DIR/bus.conf" --fork --nopidfile \
    --print-pid=3 3>"$PW_TEST_DIR/dbus.pid" >"$PW_TEST_DIR/dbus.log" 2>&1 \
    || { echo "pipewire: the D-Bus session bus did not start:" >&2; cat "$PW_TEST_DIR/dbus.log" >&2; return 1; }
  export DBUS_SESSION_BUS_ADDRESS="unix:path=$PW_TEST_DIR/bus"

  pipewire >"$PW_TEST_DIR/pipewire.log" 2>&1 &
  echo $! >"$PW_TEST_DIR/pipewire.pid"
  local i
  for i in $(seq 1 100); do
    [ -S "$PW_TEST_DIR/pipewire-0" ] && break
    sleep 0.1
  done
  [ -S "$PW_TEST_DIR/pipewire-0" ] \
    || { echo "pipewire: the daemon did not open its socket:" >&2; cat "$PW_TEST_DIR/pipewire.log" >&2; pw_test_stop; return 1; }

  wireplumber >"$PW_TEST_DIR/wireplumber.log" 2>&1 &
  echo $! >"$PW_TEST_DIR/wireplumber.pid"
  # wireplumber is ready when its client shows up on the daemon.
  for i in $(seq 1 300); do
    pw-cli ls Client 2>/dev/null | grep -qi wireplumber && break
    sleep 0.1
  done
  pw-cli ls Client 2>/dev/null | grep -qi wireplumber \
    || { echo "pipewire: wireplumber did not connect:" >&2; cat "$PW_TEST_DIR/wireplumber.log" >&2; pw_test_stop; return 1; }
  export PW_TEST_DIR DESKSTREAM_TEST_PIPEWIRE=1
  echo "pipewire: test session in $PW_TEST_DIR"
}

pw_test_stop() {
  [ -n "${PW_TEST_DIR:-}" ] || return 0
  local f pid
  for f in wireplumber pipewire dbus; do
    pid=$(cat "$PW_TEST_DIR/$f.pid" 2>/dev/null) || continue
    [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
  done
  for f in wireplumber pipewire; do
    pid=$(cat "$PW_TEST_DIR/$f.pid" 2>/dev/null) || continue
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$PW_TEST_DIR"
  PW_TEST_DIR=
  unset DESKSTREAM_TEST_PIPEWIRE
}
