// Fault-injection harness for tests/faults (see fault_harness.hpp).
#include "fault_harness.hpp"

#include "deskstream/core/auth.hpp"
#include "deskstream/core/frame_header.hpp"

#include <Poco/JSON/Array.h>
#include <Poco/JSON/Parser.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/StreamCopier.h>

#include <csignal>
#include <cstdlib>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include <fcntl.h>
#include <sched.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace ds_faults {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using Poco::Net::WebSocket;

const char* const kSecret = "fault-test-secret";

long msSince(Clock::time_point t0) {
    return static_cast<long>(
        std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count());
}

void netns(const std::string& args) {
    std::string cmd = "bash " DS_SOURCE_DIR "/scripts/lib/netns.sh " + args + " 2>&1";
    FILE* p = ::popen(cmd.c_str(), "r");
    if (!p) throw std::runtime_error("cannot run " + cmd);
    std::string out;
    char buf[512];
    while (size_t n = fread(buf, 1, sizeof buf, p)) out.append(buf, n);
    int st = ::pclose(p);
    if (st != 0)
        throw std::runtime_error("netns.sh " + args + " failed (" + std::to_string(st) +
                                 "): " + out);
}

Namespaces::Namespaces(std::string prefix) : prefix_(std::move(prefix)) { netns("up " + prefix_); }
Namespaces::~Namespaces() {
    try {
        netns("down " + prefix_);
    } catch (const std::exception& e) {
        fprintf(stderr, "%s\n", e.what());
    }
}
void Namespaces::impair(char side, int delayMs, int jitterMs, int lossPct) {
    netns("impair " + prefix_ + " " + side + " " + std::to_string(delayMs) + " " +
          std::to_string(jitterMs) + " " + std::to_string(lossPct));
}

InNamespace::InNamespace(const std::string& ns) {
    if (ns.empty()) return;
    original_ = ::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    int fd = ::open(("/var/run/netns/" + ns).c_str(), O_RDONLY | O_CLOEXEC);
    if (original_ < 0 || fd < 0 || ::setns(fd, CLONE_NEWNET) != 0) {
        if (fd >= 0) ::close(fd);
        throw std::runtime_error("cannot enter network namespace " + ns + " (root needed)");
    }
    ::close(fd);
}
InNamespace::~InNamespace() {
    if (original_ < 0) return;
    if (::setns(original_, CLONE_NEWNET) != 0) std::abort();  // a thread left in a test namespace
    ::close(original_);
}

std::string tempDir(const std::string& name) {
    fs::path p = fs::path(DS_BINARY_DIR) / "faults-tmp" / (std::to_string(::getpid()) + "-" + name);
    fs::remove_all(p);
    fs::create_directories(p);
    return p.string();
}

void removeTempDirs() {
    std::error_code ec;
    std::string prefix = std::to_string(::getpid()) + "-";
    for (auto it = fs::directory_iterator(fs::path(DS_BINARY_DIR) / "faults-tmp", ec);
         !ec && it != fs::directory_iterator(); ++it)
        if (it->path().filename().string().rfind(prefix, 0) == 0) fs::remove_all(it->path(), ec);
}

std::vector<std::string> baseArgs(const std::string& stateDir) {
    return {"--set", "host.plugins.path=" DS_BUILD_PLUGIN_DIR,
            "--set", "host.state_dir=" + stateDir,
            "--set", "agent.capture=synthetic",
            "--set", "capture.synthetic.width=640",
            "--set", "capture.synthetic.height=400",
            "--set", "agent.encoder=jpeg",
            "--set", "relay.store=sqlite",
            "--set", "auth.secret=" + std::string(kSecret)};
}

Poco::Net::WebSocket rawAgentSocket(Poco::Net::HTTPClientSession& session,
                                    const std::string& clientId) {
    Poco::Net::HTTPRequest req(Poco::Net::HTTPRequest::HTTP_GET, "/ws/agent",
                               Poco::Net::HTTPMessage::HTTP_1_1);
    Poco::Net::HTTPResponse resp;
    Poco::Net::WebSocket ws(session, req, resp);
    ws.setReceiveTimeout(Poco::Timespan(10, 0));
    const std::string hs =
        "{\"type\":\"handshake\",\"protocol\":1,\"role\":\"desktop\",\"clientId\":\"" + clientId +
        "\",\"token\":\"" + mint(true, clientId) +
        "\",\"monitors\":[{\"index\":0,\"width\":64,\"height\":48}]}";
    ws.sendFrame(hs.data(), static_cast<int>(hs.size()));
    return ws;
}

std::string mint(bool desktop, const std::string& sub) {
    using namespace deskstream::core;
    auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::system_clock::now().time_since_epoch())
                   .count();
    return mintToken(kSecret, desktop ? Role::Desktop : Role::Viewer, sub, std::chrono::hours(2),
                     now);
}

Process::Process(const std::vector<std::string>& args, const std::string& ns) {
    static std::atomic<int> counter{0};
    std::string base = tempDir("proc" + std::to_string(counter++));
    errPath_ = base + "/stderr";
    outPath_ = base + "/stdout";
    std::vector<std::string> all;
    if (!ns.empty()) all = {"/usr/sbin/ip", "netns", "exec", ns};
    all.push_back(DS_DESKSTREAM_BIN);
    all.insert(all.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : all) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, outPath_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&fa, 2, errPath_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int rc = posix_spawn(&pid_, argv[0], &fa, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) throw std::runtime_error("cannot start " + all[0]);
}
Process::~Process() {
    if (running()) {
        signal(SIGKILL);
        wait(10s);
    }
}
void Process::signal(int sig) {
    if (pid_ > 0 && status_ < 0) ::kill(pid_, sig);
}
int Process::wait(std::chrono::milliseconds timeout) {
    auto deadline = Clock::now() + timeout;
    while (status_ < 0) {
        int st = 0;
        pid_t r = ::waitpid(pid_, &st, WNOHANG);
        if (r == pid_) {
            status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
            break;
        }
        if (Clock::now() > deadline) return -1;
        std::this_thread::sleep_for(10ms);
    }
    return status_;
}
bool Process::running() { return pid_ > 0 && wait(0ms) < 0; }
std::string Process::err() const {
    std::ifstream in(errPath_);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}
size_t Process::errSize() const {
    std::error_code ec;
    auto n = fs::file_size(errPath_, ec);
    return ec ? 0 : static_cast<size_t>(n);
}
long Process::waitForLog(const std::string& text, long timeoutMs, size_t fromOffset) const {
    auto t0 = Clock::now();
    do {
        std::string e = err();
        if (e.size() > fromOffset && e.find(text, fromOffset) != std::string::npos)
            return msSince(t0);
        std::this_thread::sleep_for(20ms);
    } while (msSince(t0) < timeoutMs);
    return -1;
}

Json parse(const std::string& text) {
    try {
        Poco::JSON::Parser p;
        return p.parse(text).extract<Json>();
    } catch (...) {
        return nullptr;
    }
}

namespace {
// Every relay of these tests has [auth] secret set, so /api needs a viewer token (docs/relay.md).
void authorize(Poco::Net::HTTPRequest& req, const std::string& path) {
    if (path.rfind("/api/", 0) == 0) req.set("Authorization", "Bearer " + mint(false, "fault-api"));
}
}  // namespace

std::pair<int, std::string> httpGet(const std::string& host, uint16_t port,
                                    const std::string& path) {
    try {
        Poco::Net::HTTPClientSession s(host, port);
        s.setTimeout(Poco::Timespan(3, 0));
        Poco::Net::HTTPRequest req(Poco::Net::HTTPRequest::HTTP_GET, path,
                                   Poco::Net::HTTPMessage::HTTP_1_1);
        authorize(req, path);
        s.sendRequest(req);
        Poco::Net::HTTPResponse resp;
        std::istream& in = s.receiveResponse(resp);
        std::string body;
        Poco::StreamCopier::copyToString(in, body);
        return {static_cast<int>(resp.getStatus()), body};
    } catch (...) {
        return {0, ""};
    }
}

std::pair<int, std::string> httpPost(const std::string& host, uint16_t port,
                                     const std::string& path, const std::string& body) {
    try {
        Poco::Net::HTTPClientSession s(host, port);
        s.setTimeout(Poco::Timespan(15, 0));
        Poco::Net::HTTPRequest req(Poco::Net::HTTPRequest::HTTP_POST, path,
                                   Poco::Net::HTTPMessage::HTTP_1_1);
        req.setContentType("application/json");
        req.setContentLength(static_cast<std::streamsize>(body.size()));
        authorize(req, path);
        s.sendRequest(req) << body;
        Poco::Net::HTTPResponse resp;
        std::istream& in = s.receiveResponse(resp);
        std::string out;
        Poco::StreamCopier::copyToString(in, out);
        return {static_cast<int>(resp.getStatus()), out};
    } catch (...) {
        return {0, ""};
    }
}

uint16_t freePort() {
    Poco::Net::ServerSocket s(Poco::Net::SocketAddress("127.0.0.1", 0));
    return s.address().port();
}

std::string psql(const std::string& sql) {
    const char* pg = std::getenv("DESKSTREAM_TEST_PG");
    if (!pg) throw std::runtime_error("DESKSTREAM_TEST_PG is not set: run through scripts/test.sh");
    std::string cmd =
        "psql \"" + std::string(pg) + "\" -v ON_ERROR_STOP=1 -qAt -c \"" + sql + "\" 2>&1";
    FILE* p = ::popen(cmd.c_str(), "r");
    if (!p) throw std::runtime_error("cannot run psql");
    std::string out;
    char buf[512];
    while (size_t n = fread(buf, 1, sizeof buf, p)) out.append(buf, n);
    if (::pclose(p) != 0) throw std::runtime_error("psql: " + sql + ": " + out);
    return out;
}

Json desktop(const std::string& host, uint16_t port, const std::string& clientId) {
    auto r = httpGet(host, port, "/api/desktops");
    if (r.first != 200) return nullptr;
    Json o = parse(r.second);
    if (!o || !o->has("desktops")) return nullptr;
    auto arr = o->getArray("desktops");
    for (size_t i = 0; arr && i < arr->size(); ++i) {
        Json d = arr->getObject(static_cast<unsigned>(i));
        if (d && d->optValue<std::string>("clientId", "") == clientId) return d;
    }
    return nullptr;
}

bool waitHealthy(const std::string& host, uint16_t port, long timeoutMs) {
    return eventually([&] { return httpGet(host, port, "/healthz").first == 200; }, timeoutMs, 50);
}

bool eventually(const std::function<bool()>& cond, long timeoutMs, long stepMs) {
    auto t0 = Clock::now();
    while (true) {
        if (cond()) return true;
        if (msSince(t0) >= timeoutMs) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(stepMs));
    }
}

Viewer::Viewer(const std::string& ns, const std::string& host, uint16_t port,
               const std::string& desktopId)
    : desktop_(desktopId) {
    thread_ = std::thread([this, ns, host, port] { run(ns, host, port); });
}
Viewer::~Viewer() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
}
long Viewer::takeMaxGapMs() {
    long now = msSince(t0_);
    long gap = std::max(maxGapMs_.exchange(0), now - lastFrameMs_.load());
    return gap;
}
std::string Viewer::error() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return error_;
}

void Viewer::run(std::string ns, std::string host, uint16_t port) {
    try {
        InNamespace in(ns);
        Poco::Net::HTTPClientSession session(host, port);
        session.setTimeout(Poco::Timespan(5, 0));
        Poco::Net::HTTPRequest req(Poco::Net::HTTPRequest::HTTP_GET, "/ws/viewer",
                                   Poco::Net::HTTPMessage::HTTP_1_1);
        Poco::Net::HTTPResponse resp;
        WebSocket ws(session, req, resp);
        ws.setReceiveTimeout(Poco::Timespan(10, 0));
        ws.setSendTimeout(Poco::Timespan(5, 0));
        auto send = [&](const std::string& t) {
            ws.sendFrame(t.data(), static_cast<int>(t.size()));
        };
        send("{\"type\":\"handshake\",\"protocol\":1,\"role\":\"viewer\",\"token\":\"" +
             mint(false, "fault-viewer") + "\"}");
        bool askedSubscribe = false;
        long resubscribeAtMs = -1;
        Poco::Buffer<char> buf(0);
        lastFrameMs_ = msSince(t0_);
        while (!stop_) {
            if (!reading_) {
                std::this_thread::sleep_for(20ms);
                continue;
            }
            if (resubscribeAtMs >= 0 && msSince(t0_) >= resubscribeAtMs) {
                resubscribeAtMs = -1;
                send("{\"type\":\"subscribe\",\"desktopClientId\":\"" + desktop_ + "\"}");
            }
            if (!ws.poll(Poco::Timespan(0, 20000), Poco::Net::Socket::SELECT_READ)) continue;
            int flags = 0;
            buf.resize(0);
            int n = ws.receiveFrame(buf, flags);
            int op = flags & WebSocket::FRAME_OP_BITMASK;
            if (n == 0 && flags == 0) break;  // peer closed the TCP connection
            if (op == WebSocket::FRAME_OP_CLOSE) {
                closeCode_ = n >= 2 ? ((static_cast<unsigned char>(buf.begin()[0]) << 8) |
                                       static_cast<unsigned char>(buf.begin()[1]))
                                    : 1005;
                break;
            }
            if (op == WebSocket::FRAME_OP_TEXT) {
                Json j = parse(std::string(buf.begin(), buf.size()));
                std::string type = j ? j->optValue<std::string>("type", "") : "";
                if (type == "ping")
                    send("{\"type\":\"pong\",\"timestamp\":" +
                         std::to_string(j->optValue<int64_t>("timestamp", 0)) + "}");
                else if (type == "handshake_ack" && !askedSubscribe) {
                    send("{\"type\":\"subscribe\",\"desktopClientId\":\"" + desktop_ + "\"}");
                    askedSubscribe = true;
                } else if (type == "subscribed") {
                    subscribed_ = true;
                } else if (type == "desktop_disconnected" || (type == "error" && !subscribed_)) {
                    // The subscription ended (docs/protocol.md): ask again until the desktop is
                    // back, as the viewer page does.
                    subscribed_ = false;
                    resubscribeAtMs = msSince(t0_) + 500;
                }
                continue;
            }
            if (op != WebSocket::FRAME_OP_BINARY) continue;
            auto d = deskstream::core::decodeFrame(reinterpret_cast<const uint8_t*>(buf.begin()),
                                                   buf.size(), 0);
            if (!d.ok) continue;
            long now = msSince(t0_);
            long gap = now - lastFrameMs_.exchange(now);
            if (gap > maxGapMs_) maxGapMs_ = gap;
            ++frames_;
            send("{\"type\":\"frame_ack\",\"desktopClientId\":\"" + desktop_ +
                 "\",\"frameNumber\":" + std::to_string(d.header.frameNumber) + ",\"latency\":5}");
        }
    } catch (const std::exception& e) {
        std::lock_guard<std::mutex> lock(mutex_);
        error_ = e.what();
    }
    closed_ = true;
}

}  // namespace ds_faults
