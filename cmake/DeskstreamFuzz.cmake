# The libFuzzer build (DESKSTREAM_FUZZ=ON, preset "fuzz"; docs/fuzzing.md). Every project file
# is compiled with coverage instrumentation (-fsanitize=fuzzer-no-link) plus ASan and UBSan; the
# fuzz targets link the libFuzzer driver. Only sdk, core and the host configuration library
# (deskstream_host_base) are built: host/ is added EXCLUDE_FROM_ALL, so its other targets are
# configured but never compiled here.
if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
  message(FATAL_ERROR "DESKSTREAM_FUZZ needs clang (libFuzzer), not ${CMAKE_CXX_COMPILER_ID}: "
                      "cmake --preset fuzz (clang++-14; scripts/bootstrap.sh installs it)")
endif()

# -O1: fast enough to fuzz, still precise stack traces. Asserts stay on (Debug).
set(_ds_fuzz_flags -fsanitize=address,undefined -fno-sanitize-recover=undefined
    -fno-omit-frame-pointer -O1 -g)
add_compile_options(-fsanitize=fuzzer-no-link ${_ds_fuzz_flags})
add_link_options(-fsanitize=address,undefined)

# The libFuzzer runtime (libclang_rt.fuzzer-x86_64.a) ships in libclang-rt-14-dev, which clang-14
# only recommends: say so here rather than with a linker error.
include(CheckCXXSourceCompiles)
set(CMAKE_REQUIRED_LINK_OPTIONS -fsanitize=fuzzer)
check_cxx_source_compiles([=[
#include <cstddef>
#include <cstdint>
extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t*, std::size_t) { return 0; }
]=] DESKSTREAM_HAVE_LIBFUZZER)
unset(CMAKE_REQUIRED_LINK_OPTIONS)
if(NOT DESKSTREAM_HAVE_LIBFUZZER)
  message(FATAL_ERROR "clang cannot link -fsanitize=fuzzer: the libFuzzer runtime is missing "
                      "(Debian 12: apt-get install libclang-rt-14-dev; scripts/bootstrap.sh)")
endif()

add_subdirectory(sdk)
add_subdirectory(core)
add_subdirectory(host EXCLUDE_FROM_ALL)
add_subdirectory(tests/fuzz)
