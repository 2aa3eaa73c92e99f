# Starts and stops a throw-away PostgreSQL 15 server for the tests: initdb into a temporary
# folder, owned by the unprivileged 'postgres' user, listening on 127.0.0.1 and a free port only.
# Source this file, then: pg_test_start; ...; pg_test_stop
# Exports DESKSTREAM_TEST_PG (a libpq connection string for the superuser 'deskstream_admin').
# Connections over 127.0.0.1 use password authentication (scram-sha-256); the Unix socket in
# $PG_TEST_DIR trusts the local 'postgres' user (used only by this script).

pg_bin() {
  local d
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  [ -n "$d" ] || { echo "postgres: no PostgreSQL server binaries under /usr/lib/postgresql" >&2; return 1; }
  echo "$d"
}

free_port() {
  local p
  for p in $(seq 55432 55532); do
    if ! (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null; then echo "$p"; return 0; fi
  done
  return 1
}

pg_test_start() {
  local bin; bin=$(pg_bin) || return 1
  PG_TEST_DIR=$(mktemp -d /tmp/deskstream-pg.XXXXXX)
  chmod 755 "$PG_TEST_DIR"
  chown postgres:postgres "$PG_TEST_DIR"
  PG_TEST_PORT=$(free_port) || { echo "postgres: no free port" >&2; return 1; }
  runuser -u postgres -- "$bin/initdb" -D "$PG_TEST_DIR/data" -U postgres --auth-local=trust --auth-host=scram-sha-256 -E UTF8 >"$PG_TEST_DIR/initdb.log" 2>&1 \
    || { echo "postgres: initdb failed:" >&2; cat "$PG_TEST_DIR/initdb.log" >&2; return 1; }
  runuser -u postgres -- "$bin/pg_ctl" -D "$PG_TEST_DIR/data" -l "$PG_TEST_DIR/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $PG_TEST_PORT -k $PG_TEST_DIR -c fsync=on -c max_connections=200" start >/dev/null \
    || { echo "postgres: server did not start:" >&2; cat "$PG_TEST_DIR/server.log" >&2; return 1; }
  # The superuser connects over the Unix socket (trust); TCP clients must give a password
  # (scram-sha-256), so authentication failures are real and testable.
  # One -c per statement: CREATE DATABASE cannot run inside the implicit transaction of a
  # multi-statement -c.
  runuser -u postgres -- psql -h "$PG_TEST_DIR" -p "$PG_TEST_PORT" -U postgres -qAt -v ON_ERROR_STOP=1 \
    -c "CREATE ROLE deskstream_admin LOGIN SUPERUSER PASSWORD 'deskstream'" \
    -c "CREATE DATABASE deskstream_test OWNER deskstream_admin" >/dev/null \
    || { echo "postgres: cannot create the test role and database" >&2; return 1; }
  export PG_TEST_DIR PG_TEST_PORT
  export DESKSTREAM_TEST_PG="host=127.0.0.1 port=$PG_TEST_PORT dbname=deskstream_test user=deskstream_admin password=deskstream connect_timeout=3"
  # Tests that stop and restart the server use these.
  export DESKSTREAM_TEST_PG_CTL="$bin/pg_ctl"
  export DESKSTREAM_TEST_PG_DATA="$PG_TEST_DIR/data"
  export DESKSTREAM_TEST_PG_OPTS="-c listen_addresses=127.0.0.1 -p $PG_TEST_PORT -k $PG_TEST_DIR -c max_connections=200"
  echo "postgres: test server on 127.0.0.1:$PG_TEST_PORT ($PG_TEST_DIR)"
}

pg_test_stop() {
  [ -n "${PG_TEST_DIR:-}" ] || return 0
  local bin; bin=$(pg_bin) || return 0
  runuser -u postgres -- "$bin/pg_ctl" -D "$PG_TEST_DIR/data" -m immediate -w stop >/dev/null 2>&1 || true
  rm -rf "$PG_TEST_DIR"
  PG_TEST_DIR=
}
