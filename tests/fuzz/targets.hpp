// The fuzz targets' bodies (docs/fuzzing.md). Each feeds one input to a production decoder and
// checks what the decoder promises beyond "no crash" (round trips, invariants of an accepted
// value, bounded error texts). The same functions run under libFuzzer (clang build, one binary
// per target: libfuzzer_entry.cpp) and in the gcc unit suite, which replays every file of
// tests/fuzz/corpus/<target>/ (corpus_replay_test.cpp), so a crash kept in the corpus stays a
// regression test.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

namespace deskstream::fuzz {

void jsonMessage(const std::uint8_t* data, std::size_t size);  // corpus/json_message
void frameHeader(const std::uint8_t* data, std::size_t size);  // corpus/frame_header
void token(const std::uint8_t* data, std::size_t size);        // corpus/token
void config(const std::uint8_t* data, std::size_t size);       // corpus/config
void wsFrame(const std::uint8_t* data, std::size_t size);      // corpus/ws_frame

/// A broken promise: print it and abort, which libFuzzer reports as a crash (and saves the
/// input) and which fails the replay test.
[[noreturn]] inline void fail(const char* condition, const char* what, const char* file, int line) {
    std::fprintf(stderr, "%s:%d: fuzz check failed: %s (%s)\n", file, line, what, condition);
    std::abort();
}

}  // namespace deskstream::fuzz

#define DS_FUZZ_CHECK(cond, what) \
    ((cond) ? (void)0 : ::deskstream::fuzz::fail(#cond, what, __FILE__, __LINE__))
