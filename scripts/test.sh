#!/usr/bin/env bash
# README command 2: installs what is needed, builds the Debug + ASan/UBSan preset, starts the
# services the tests use (PostgreSQL; Xvfb; a D-Bus session bus, pipewire and wireplumber),
# runs the whole ctest suite and stops the services.
# Extra arguments go to ctest (e.g. scripts/test.sh -L unit).
# The ctest label "fuzz" builds the clang libFuzzer preset (FuzzRun.Build) and runs each fuzz
# target for 30 s (FuzzRun.<target>; docs/fuzzing.md): clang-14 comes from bootstrap.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

bash scripts/bootstrap.sh
bash scripts/lib/e2e.sh ensure

PRESET=${DESKSTREAM_PRESET:-debug}
JOBS=${DESKSTREAM_JOBS:-$(nproc)}
cmake --preset "$PRESET" -G Ninja >/dev/null
cmake --build --preset "$PRESET" -j "$JOBS"

# The Debian package (CPack .deb from a Release build in build/package, checked with dpkg-deb -c,
# its computed Depends, lintian and an extracted throw-away root: docs/embedding.md). It runs
# before ctest so that the ctest summary is the last thing printed. Left out when arguments
# choose tests (e.g. `scripts/test.sh -L unit`) or with DESKSTREAM_TEST_PACKAGE=0.
if [ "${DESKSTREAM_TEST_PACKAGE:-1}" != 0 ] && [ $# -eq 0 ]; then
  bash scripts/package.sh
fi

source scripts/lib/postgres.sh
source scripts/lib/xvfb.sh
source scripts/lib/pipewire.sh
cleanup() { pg_test_stop; xvfb_test_stop; pw_test_stop; }
trap cleanup EXIT
pg_test_start
xvfb_test_start
pw_test_start

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
cd "build/$PRESET"
ctest --output-on-failure --timeout 600 "$@"

