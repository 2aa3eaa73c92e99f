// Installed and embedded deskstream, end to end (issue 16): `cmake --install` into a temporary
// prefix, the plugin skeleton built out of tree against it with find_package, the installed
// executable streaming the skeleton's picture to a viewer; the embedding example (host library
// + static plugin) streaming and exiting 0 on SIGTERM; a plugin copied into a plugin folder of a
// running host loaded on SIGHUP.
#include "deskstream/core/frame_header.hpp"
#include "ds_test/child_process.hpp"
#include "ds_test/frame_canvas.hpp"
#include "relay_fixture.hpp"

#include <Poco/Net/ServerSocket.h>
#include <Poco/Net/WebSocket.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

std::string readFile(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

fs::path freshDir(const std::string& what) {
    std::random_device rd;
    fs::path p = fs::temp_directory_path() /
                 ("ds-pkg-" + what + "-" + std::to_string(rd()) + std::to_string(rd()));
    fs::create_directories(p);
    return p;
}

// A child process with stdout/stderr in files in `dir` (ds_test/child_process.hpp).
class Process : public ds_test::ChildProcess {
public:
    Process(const std::string& program, std::vector<std::string> args, const fs::path& dir,
            const fs::path& cwd = {})
        : ChildProcess(program, std::move(args), dir.string(), cwd.string()) {}
};

int runToEnd(const std::string& program, const std::vector<std::string>& args, const fs::path& dir,
             std::chrono::milliseconds timeout, std::string& output) {
    Process p(program, args, dir);
    int st = p.wait(timeout);
    output = p.output();
    return st;
}

// A port unlikely to be taken: 20000 + random, checked free by binding it.
uint16_t pickPort() {
    std::random_device rd;
    for (int i = 0; i < 50; ++i) {
        uint16_t port = static_cast<uint16_t>(20000 + rd() % 30000);
        try {
            Poco::Net::ServerSocket s(Poco::Net::SocketAddress("127.0.0.1", port));
            return port;
        } catch (...) {}
    }
    throw std::runtime_error("no free port");
}

struct Picture {
    deskstream::core::FrameHeader header;
    std::string payload;
};

// Connects a viewer to the relay on `port` (retrying until it listens), subscribes to `desktop`
// (retrying until the agent registered) and returns the first frame. Bound: `timeoutMs`.
bool receivePicture(uint16_t port, const std::string& desktop, int timeoutMs, Picture& out,
                    std::string& why) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeoutMs);
    while (std::chrono::steady_clock::now() < deadline) {
        try {
            ds_itest::WsClient viewer(port, "/ws/viewer", true);
            viewer.send(ds_itest::viewerHandshake());
            if (!viewer.waitFor("handshake_ack", 3000))
                throw std::runtime_error("no handshake_ack");
            viewer.send("{\"type\":\"subscribe\",\"desktopClientId\":\"" + desktop + "\"}");
            ds_itest::Json reply = viewer.next(3000);
            while (reply && viewer.answerIfPing(reply)) reply = viewer.next(3000);
            if (!reply || ds_itest::str(reply, "type") != "subscribed")
                throw std::runtime_error("not subscribed: " +
                                         (reply ? ds_itest::str(reply, "type") : "timeout"));
            while (std::chrono::steady_clock::now() < deadline) {
                std::string bin = viewer.waitBinary(1000);
                if (bin.empty()) continue;
                auto d = deskstream::core::decodeFrame(reinterpret_cast<const uint8_t*>(bin.data()),
                                                       bin.size(), 0);
                if (!d.ok) continue;
                out.header = d.header;
                out.payload = bin.substr(d.header.headerLength);
                return true;
            }
        } catch (const std::exception& e) {
            why = e.what();
        }
        std::this_thread::sleep_for(200ms);
    }
    return false;
}

// The colour of the picture's centre pixel as RRGGBB components, decoded with the test viewer's
// decoder (JPEG, or WebP when the agent's damage encoding sent the flat picture lossless).
bool centrePixel(const Picture& p, int& r, int& g, int& b) {
    const auto& h = p.header;
    ds_test::Canvas canvas;
    const std::string error = ds_test::drawRect(
        canvas, static_cast<int>(h.codec), h.screenWidth, h.screenHeight, h.rectX, h.rectY,
        h.rectWidth, h.rectHeight, reinterpret_cast<const std::uint8_t*>(p.payload.data()),
        p.payload.size());
    if (!error.empty() || canvas.width == 0) return false;
    const size_t i = (static_cast<size_t>(canvas.height / 2) * canvas.width + canvas.width / 2) * 4;
    b = canvas.bgra[i];
    g = canvas.bgra[i + 1];
    r = canvas.bgra[i + 2];
    return true;
}

void expectColour(const Picture& p, int r, int g, int b) {
    int pr = -1, pg = -1, pb = -1;
    ASSERT_TRUE(centrePixel(p, pr, pg, pb))
        << "the payload does not decode (codec " << static_cast<int>(p.header.codec) << ")";
    // JPEG at quality >= 30 keeps a flat colour within a few levels (WebP lossless: exactly).
    EXPECT_NEAR(pr, r, 12);
    EXPECT_NEAR(pg, g, 12);
    EXPECT_NEAR(pb, b, 12);
}

// Bounds: an install copies ~20 files; the out-of-tree plugin build compiles one file (up to a
// few minutes on 2 busy cores under load); a frame reaches a viewer within seconds normally, 60 s
// leaves room for ASan start-up. Each fails when the step breaks (no package, no plugin, no frame).
TEST(Install, InstalledTreeStreamsTheSkeletonBuiltAgainstItToAViewer) {
    fs::path work = freshDir("install");
    fs::path prefix = work / "prefix";
    std::string out;
    ASSERT_EQ(runToEnd(DS_CMAKE_COMMAND, {"--install", DS_BINARY_ROOT, "--prefix", prefix.string()},
                       work / "", 300s, out),
              0)
        << out;
    for (const char* f :
         {"bin/deskstream", "lib/deskstream/plugins/deskstream_store_sqlite.so",
          "lib/deskstream/plugins/deskstream_encoder_jpeg.so",
          "lib/deskstream/plugins/deskstream_capture_synthetic.so", "include/deskstream/plugin.h",
          "include/deskstream/plugin.hpp", "include/deskstream/host/host.hpp",
          "share/deskstream/web/index.html", "share/deskstream/examples/deskstream.ini",
          "lib/cmake/deskstream/deskstreamConfig.cmake",
          "lib/cmake/deskstream/deskstreamConfigVersion.cmake",
          "lib/cmake/deskstream/deskstreamSdkTargets.cmake",
          "lib/cmake/deskstream/deskstreamPlugin.cmake"})
        EXPECT_TRUE(fs::exists(prefix / f)) << f;

    // The skeleton, out of tree, with find_package(deskstream 1.1 CONFIG) and nothing else.
    fs::path skeleton = work / "skeleton";
    ASSERT_EQ(runToEnd(DS_CMAKE_COMMAND,
                       {"-S", std::string(DS_SOURCE_DIR) + "/examples/plugin_skeleton", "-B",
                        skeleton.string(), "-DCMAKE_BUILD_TYPE=Release",
                        "-DCMAKE_CXX_COMPILER=" + std::string(DS_CXX_COMPILER),
                        "-DCMAKE_PREFIX_PATH=" + prefix.string()},
                       work, 120s, out),
              0)
        << out;
    ASSERT_EQ(runToEnd(DS_CMAKE_COMMAND, {"--build", skeleton.string()}, work, 300s, out), 0)
        << out;
    fs::copy_file(skeleton / "deskstream_capture_skeleton.so",
                  prefix / "lib/deskstream/plugins/deskstream_capture_skeleton.so");

    // A version the package does not offer is refused by find_package.
    fs::path probe = work / "probe";
    fs::create_directories(probe);
    std::ofstream(probe / "CMakeLists.txt")
        << "cmake_minimum_required(VERSION 3.16)\nproject(p NONE)\n"
           "find_package(deskstream 2.0 CONFIG REQUIRED)\n";
    EXPECT_NE(runToEnd(DS_CMAKE_COMMAND,
                       {"-S", probe.string(), "-B", (probe / "b").string(),
                        "-DCMAKE_PREFIX_PATH=" + prefix.string()},
                       work, 120s, out),
              0)
        << "find_package(deskstream 2.0) must fail against a 1.x package\n"
        << out;

    // The embedding example, out of tree against the installed package (COMPONENTS host): the
    // exported deskstream::host links and runs, with the skeleton linked in statically. The
    // installed libraries carry this tree's sanitizer flags, so the program gets them too.
    fs::path embed = work / "embed";
    ASSERT_EQ(
        runToEnd(
            DS_CMAKE_COMMAND,
            {"-S", std::string(DS_SOURCE_DIR) + "/examples/embed", "-B", embed.string(),
             "-DCMAKE_BUILD_TYPE=Debug", "-DCMAKE_CXX_COMPILER=" + std::string(DS_CXX_COMPILER),
             "-DCMAKE_PREFIX_PATH=" + prefix.string(), "-DCMAKE_CXX_FLAGS=" DS_SANITIZE_FLAGS,
             "-DCMAKE_EXE_LINKER_FLAGS=" DS_SANITIZE_FLAGS},
            work, 120s, out),
        0)
        << out;
    ASSERT_EQ(runToEnd(DS_CMAKE_COMMAND, {"--build", embed.string()}, work, 600s, out), 0) << out;
    {
        fs::path embedRun = work / "embed-run";
        fs::create_directories(embedRun);
        uint16_t embedPort = pickPort();
        Process program((embed / "deskstream_embed_example").string(),
                        {(prefix / "lib/deskstream/plugins").string(), std::to_string(embedPort),
                         (embedRun / "state").string()},
                        embedRun);
        Picture p;
        std::string why;
        ASSERT_TRUE(receivePicture(embedPort, "embedded-desk", 60000, p, why)) << why << "\n"
                                                                               << program.output();
        expectColour(p, 0x20, 0xa0, 0x40);
        program.signal(SIGTERM);
        EXPECT_EQ(program.wait(30s), 0) << program.output();
        // The installed skeleton module has the same name: the static registration came first.
        EXPECT_NE(program.err().find(
                      "capture plugin name 'skeleton' is already taken by static:SkeletonCapture"),
                  std::string::npos)
            << program.err();
    }

    // The installed host, started from an unrelated folder with no plugin path or web root
    // given: both are found relative to the executable.
    fs::path run = work / "run";
    fs::create_directories(run);
    uint16_t port = pickPort();
    std::string listen = "127.0.0.1:" + std::to_string(port);
    Process host(
        (prefix / "bin/deskstream").string(),
        {"--set", "relay.listen=" + listen, "--set", "relay.public_url=http://" + listen, "--set",
         "agent.relay_url=ws://" + listen + "/ws/agent", "--set", "agent.client_id=installed-desk",
         "--set", "agent.capture=skeleton", "--set", "capture.skeleton.width=160", "--set",
         "capture.skeleton.height=120", "--set", "capture.skeleton.color=e04020", "--set",
         "host.state_dir=" + (run / "state").string()},
        run, run);
    Picture pic;
    std::string why;
    ASSERT_TRUE(receivePicture(port, "installed-desk", 60000, pic, why)) << why << "\n"
                                                                         << host.output();
    EXPECT_EQ(pic.header.screenWidth, 160u);
    EXPECT_EQ(pic.header.screenHeight, 120u);
    expectColour(pic, 0xe0, 0x40, 0x20);
    auto page = ds_itest::httpRequest(port, "GET", "/");
    EXPECT_EQ(page.status, 200) << "the viewer page comes from share/deskstream/web";
    EXPECT_EQ(page.body, readFile((prefix / "share/deskstream/web/index.html").string()));
    host.signal(SIGTERM);
    EXPECT_EQ(host.wait(30s), 0) << host.output();
    std::error_code ec;
    fs::remove_all(work, ec);
}

// Bound: 60 s for the first frame (ASan start-up on busy cores), 30 s for the clean stop.
TEST(Embed, ExampleProgramStreamsAFrameAndExitsZeroOnSigterm) {
    fs::path work = freshDir("embed");
    uint16_t port = pickPort();
    Process embed(DS_EMBED_EXE,
                  {DS_BUILD_PLUGIN_DIR, std::to_string(port), (work / "state").string()}, work);
    Picture pic;
    std::string why;
    ASSERT_TRUE(receivePicture(port, "embedded-desk", 60000, pic, why)) << why << "\n"
                                                                        << embed.output();
    EXPECT_EQ(pic.header.screenWidth, 320u);
    EXPECT_EQ(pic.header.screenHeight, 200u);
    expectColour(pic, 0x20, 0xa0, 0x40);
    embed.signal(SIGTERM);
    EXPECT_EQ(embed.wait(30s), 0) << embed.output();
    const std::string err = embed.err();
    EXPECT_NE(err.find("[vendor] host.plugins: loaded capture plugin 'skeleton' 0.1.0 from "
                       "static:SkeletonCapture"),
              std::string::npos)
        << "the host logs into the vendor's channel\n"
        << err;
    EXPECT_NE(embed.out().find("embed: stopped"), std::string::npos) << embed.output();
    std::error_code ec;
    fs::remove_all(work, ec);
}

// Bound: the rescan runs within the host's 200 ms signal wait; 20 s leaves room for ASan.
TEST(Rescan, PluginCopiedIntoAFolderIsLoadedOnSighup) {
    fs::path work = freshDir("rescan");
    fs::path extra = work / "extra-plugins";
    fs::create_directories(extra);
    uint16_t port = pickPort();
    Process host(DS_DESKSTREAM_EXE,
                 {"--role", "relay", "--set",
                  "host.plugins.path=" + std::string(DS_BUILD_PLUGIN_DIR) + ";" + extra.string(),
                  "--set", "relay.listen=127.0.0.1:" + std::to_string(port), "--set",
                  "host.state_dir=" + (work / "state").string()},
                 work);
    ASSERT_TRUE(ds_itest::eventually(
        [&] { return host.out().find("running") != std::string::npos; }, 60000))
        << host.output();
    const std::string loadedLine = "loaded encoder plugin 'test_c_raw'";
    EXPECT_EQ(host.output().find(loadedLine), std::string::npos);
    fs::copy_file(std::string(DS_ABI10_PLUGIN_ROOT) + "/encoder/deskstream_encoder_test_c_raw.so",
                  extra / "deskstream_encoder_test_c_raw.so");
    host.signal(SIGHUP);
    EXPECT_TRUE(ds_itest::eventually(
        [&] { return host.output().find(loadedLine) != std::string::npos; }, 20000))
        << host.output();
    EXPECT_TRUE(ds_itest::eventually(
        [&] {
            return host.output().find(
                       "SIGHUP: rescanned the plugin folders: 1 new plugin(s) loaded") !=
                   std::string::npos;
        },
        20000))
        << host.output();
    // A second SIGHUP finds nothing new and keeps the plugin (never unloaded, never reloaded).
    host.signal(SIGHUP);
    EXPECT_TRUE(ds_itest::eventually(
        [&] {
            return host.output().find(
                       "SIGHUP: rescanned the plugin folders: 0 new plugin(s) loaded") !=
                   std::string::npos;
        },
        20000))
        << host.output();
    EXPECT_TRUE(host.running()) << "SIGHUP must not stop the host\n" << host.output();
    host.signal(SIGTERM);
    EXPECT_EQ(host.wait(30s), 0) << host.output();
    std::error_code ec;
    fs::remove_all(work, ec);
}

}  // namespace
