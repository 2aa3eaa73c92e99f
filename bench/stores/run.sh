#!/usr/bin/env bash
# Store benchmarks: both plugins through the SDK, each next to its ceiling measured in the same
# run (SQLite: the same statements through the sqlite3 C library; PostgreSQL: pgbench running
# the same statements with the same number of clients against the same throw-away server).
#   bench/stores/run.sh [build dir]      (default build/release; build it with
#                                          cmake --preset release && cmake --build --preset release)
# DS_BENCH_SECONDS (default 5) and DS_BENCH_CLIENTS (default 4) tune the runs.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
BUILD=${1:-build/release}
BENCH="$BUILD/bench/stores/store_bench"
SECS=${DS_BENCH_SECONDS:-5}
CLIENTS=${DS_BENCH_CLIENTS:-4}
[ -x "$BENCH" ] || { echo "run.sh: $BENCH not built (cmake --build $BUILD --target store_bench)" >&2; exit 1; }
PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)

source scripts/lib/postgres.sh
TMP=$(mktemp -d /tmp/ds-store-bench.XXXXXX)
cleanup() { pg_test_stop; rm -rf "$TMP"; }
trap cleanup EXIT
pg_test_start >/dev/null

echo "== machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); ${SECS}s per figure"
echo "== SQLite (WAL, synchronous=FULL), file in $TMP"
"$BENCH" sqlite "$TMP/bench.db" --threads "$CLIENTS" --seconds "$SECS" 2>/dev/null

echo "== PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}') (fsync=on), $CLIENTS clients"
"$BENCH" postgres "$DESKSTREAM_TEST_PG" bench --threads "$CLIENTS" --seconds "$SECS" 2>/dev/null
psql "$DESKSTREAM_TEST_PG" -qAt -c "TRUNCATE bench.active_desktop_clients, bench.desktop_commands" -c "VACUUM ANALYZE" >/dev/null
for script in upsert enqueue_claim; do
  out=$(PGOPTIONS="-c search_path=bench" "$PGBIN/pgbench" -n -M prepared -c "$CLIENTS" -j 2 -T "$SECS" \
        -f "$ROOT/bench/stores/pgbench/$script.sql" "$DESKSTREAM_TEST_PG" 2>&1) || { echo "$out" >&2; exit 1; }
  tps=$(echo "$out" | sed -n 's/^tps = \([0-9.]*\).*/\1/p')
  lat=$(echo "$out" | sed -n 's/^latency average = \(.*\)$/\1/p')
  printf '%-44s %9.0f /s   latency avg %s   (pgbench -M prepared -c %s -j 2)\n' "pgbench: $script (ceiling)" "$tps" "$lat" "$CLIENTS"
done
