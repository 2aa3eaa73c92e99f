// The libFuzzer entry point of one fuzz target: DS_FUZZ_TARGET names its body (targets.hpp).
#include "targets.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    ::deskstream::fuzz::DS_FUZZ_TARGET(data, size);
    return 0;
}
