# Starts and stops a throw-away Xvfb X server for the x11 capture tests (docs/capture.md).
# Source this file, then: xvfb_test_start [SCREEN]; ...; xvfb_test_stop
# (SCREEN is Xvfb's WxHxDEPTH, default 3840x1080x24; bench/capture uses 1920x1080x24.)
# Exports DESKSTREAM_TEST_X11_DISPLAY (e.g. :93). The server:
#   - takes the first free display number from 90 up (no lock file, no socket), so it does not
#     clash with a desktop's :0 or with another test run;
#   - starts at 3840x1080x24 (the tests split it into two monitors with xrandr --setmonitor and
#     resize it with xrandr --fb, whose largest size is the start size);
#   - runs with -noreset: without it the server forgets the test's RandR monitors whenever its
#     last client disconnects;
#   - listens on its Unix socket only (-nolisten tcp).

xvfb_test_start() {
  local screen=${1:-3840x1080x24}
  command -v Xvfb >/dev/null || { echo "xvfb: Xvfb is not installed (scripts/bootstrap.sh installs xvfb)" >&2; return 1; }
  local n
  XVFB_TEST_DIR=$(mktemp -d /tmp/deskstream-xvfb.XXXXXX)
  for n in $(seq 90 189); do
    [ -e "/tmp/.X$n-lock" ] || [ -e "/tmp/.X11-unix/X$n" ] && continue
    Xvfb ":$n" -screen 0 "$screen" -nolisten tcp -noreset >"$XVFB_TEST_DIR/xvfb.log" 2>&1 &
    XVFB_TEST_PID=$!
    local i
    for i in $(seq 1 50); do
      if DISPLAY=":$n" xdpyinfo >/dev/null 2>&1; then
        export DESKSTREAM_TEST_X11_DISPLAY=":$n"
        export XVFB_TEST_PID XVFB_TEST_DIR
        echo "xvfb: test server on :$n, $screen (pid $XVFB_TEST_PID)"
        return 0
      fi
      kill -0 "$XVFB_TEST_PID" 2>/dev/null || break  # lost the race for this number
      sleep 0.1
    done
    kill "$XVFB_TEST_PID" 2>/dev/null || true
    wait "$XVFB_TEST_PID" 2>/dev/null || true
  done
  echo "xvfb: could not start Xvfb on any display from :90 to :189:" >&2
  cat "$XVFB_TEST_DIR/xvfb.log" >&2
  return 1
}

xvfb_test_stop() {
  [ -n "${XVFB_TEST_PID:-}" ] || return 0
  kill "$XVFB_TEST_PID" 2>/dev/null || true
  wait "$XVFB_TEST_PID" 2>/dev/null || true
  rm -rf "$XVFB_TEST_DIR"
  XVFB_TEST_PID=
}
