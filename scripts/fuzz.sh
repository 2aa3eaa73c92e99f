#!/usr/bin/env bash
# The libFuzzer targets (tests/fuzz, docs/fuzzing.md): build them with clang, run one for a
# bounded time, or list them.
#   scripts/fuzz.sh build                       configure + build the "fuzz" preset (build/fuzz)
#   scripts/fuzz.sh run <target> [seconds] [libFuzzer flags...]
#                                               fuzz <target> (default 30 s; 0 = until stopped)
#   scripts/fuzz.sh list                        the target names
# A run reads the seeds in tests/fuzz/corpus/<target>/ and writes what it finds under
# build/fuzz/work/<target>/ (new inputs in corpus/, crashing inputs in artifacts/), never into
# the repository. Exit status: 0 when no crash, non-zero otherwise (the crash input is named).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
BUILD="$ROOT/build/fuzz"
TARGETS=(json_message frame_header token config ws_frame)

die() { echo "fuzz.sh: $*" >&2; exit 1; }

case "${1:-}" in
  list)
    printf '%s\n' "${TARGETS[@]}"
    ;;
  build)
    command -v clang++-14 >/dev/null 2>&1 ||
      die "clang++-14 is missing: the fuzz build needs clang-14 and libclang-rt-14-dev (scripts/bootstrap.sh installs them)"
    launcher=()
    if command -v ccache >/dev/null 2>&1; then
      launcher=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
    fi
    start=$(date +%s)
    cmake --preset fuzz "${launcher[@]}" >/dev/null
    cmake --build --preset fuzz -j "${DESKSTREAM_JOBS:-$(nproc)}"
    echo "fuzz.sh: fuzz build ready in $(($(date +%s) - start)) s: $BUILD/tests/fuzz/fuzz_<target>"
    ;;
  run)
    target=${2:-}
    seconds=${3:-30}
    shift $(($# < 3 ? $# : 3))
    [[ " ${TARGETS[*]} " == *" $target "* ]] || die "unknown target '$target' (scripts/fuzz.sh list)"
    bin="$BUILD/tests/fuzz/fuzz_$target"
    [ -x "$bin" ] || die "$bin is missing: run scripts/fuzz.sh build first (needs clang-14)"
    work="$BUILD/work/$target"
    mkdir -p "$work/corpus" "$work/artifacts"
    dict=()
    [ -f "$ROOT/tests/fuzz/dict/$target.dict" ] && dict=(-dict="$ROOT/tests/fuzz/dict/$target.dict")
    # The fuzzer's own sanitizer settings (the suite's ASAN_OPTIONS are for the gcc build).
    export ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1
    export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
    echo "fuzz.sh: fuzzing $target for ${seconds} s (seeds: tests/fuzz/corpus/$target)"
    status=0
    "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
      -artifact_prefix="$work/artifacts/" "${dict[@]}" "$@" \
      "$work/corpus" "$ROOT/tests/fuzz/corpus/$target" || status=$?
    if [ "$status" -ne 0 ]; then
      echo "fuzz.sh: $target FAILED (status $status); the input is in $work/artifacts/:" >&2
      ls -l "$work/artifacts/" >&2 || true
      echo "fuzz.sh: reproduce with: $bin <artifact>; keep it as tests/fuzz/corpus/$target/crash-<what>" >&2
    fi
    exit "$status"
    ;;
  *)
    sed -n '2,10p' "$0" >&2
    exit 2
    ;;
esac
