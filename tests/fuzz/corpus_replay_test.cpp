// Replays the repository's fuzz corpus (tests/fuzz/corpus/<target>/) through the fuzz targets'
// bodies in the normal gcc ASan/UBSan suite: every seed, and every input that once crashed a
// target (kept as crash-*), runs on each build, not only in the clang fuzz build.
#include "targets.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;

// Runs `body` over every file of corpus/<name>; returns how many files it read.
std::size_t replay(const std::string& name, void (*body)(const std::uint8_t*, std::size_t)) {
    const fs::path dir = fs::path(DS_FUZZ_CORPUS_DIR) / name;
    std::vector<fs::path> files;
    for (const auto& entry : fs::directory_iterator(dir))
        if (entry.is_regular_file() && entry.path().filename() != "README.md")
            files.push_back(entry.path());
    std::sort(files.begin(), files.end());
    for (const auto& f : files) {
        std::ifstream in(f, std::ios::binary);
        const std::vector<char> bytes{std::istreambuf_iterator<char>(in), {}};
        SCOPED_TRACE(f.string());
        std::fprintf(stderr, "replay %s (%zu bytes)\n", f.filename().c_str(), bytes.size());
        body(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
    }
    return files.size();
}

}  // namespace

// Each corpus holds at least its seeds: an empty folder would make the replay prove nothing.
TEST(FuzzCorpus, JsonMessage) {
    EXPECT_GE(replay("json_message", deskstream::fuzz::jsonMessage), 10u);
}
TEST(FuzzCorpus, FrameHeader) {
    EXPECT_GE(replay("frame_header", deskstream::fuzz::frameHeader), 8u);
}
TEST(FuzzCorpus, Token) { EXPECT_GE(replay("token", deskstream::fuzz::token), 8u); }
TEST(FuzzCorpus, WsFrame) { EXPECT_GE(replay("ws_frame", deskstream::fuzz::wsFrame), 20u); }
#ifdef DS_FUZZ_HAVE_CONFIG
TEST(FuzzCorpus, Config) { EXPECT_GE(replay("config", deskstream::fuzz::config), 5u); }
#endif
