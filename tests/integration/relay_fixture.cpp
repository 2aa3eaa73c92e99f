#include "relay_fixture.hpp"

#include <Poco/AutoPtr.h>
#include <Poco/ConsoleChannel.h>
#include <Poco/JSON/Parser.h>
#include <Poco/Logger.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/Net/NetException.h>
#include <Poco/Net/StreamSocket.h>
#include <Poco/StreamCopier.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <tuple>
#include <type_traits>
#include <filesystem>
#include <random>
#include <thread>

#include <sys/wait.h>
#include <unistd.h>

namespace ds_itest {

using Poco::Net::WebSocket;

Json parseJson(const std::string& text) {
    try {
        Poco::JSON::Parser p;
        return p.parse(text).extract<Json>();
    } catch (...) {
        return nullptr;
    }
}

std::string str(const Json& o, const std::string& key) {
    if (!o || !o->has(key)) return {};
    try {
        return o->getValue<std::string>(key);
    } catch (...) {
        return {};
    }
}

WsClient::WsClient(uint16_t port, const std::string& path, bool autoPong, const std::string& origin,
                   const std::string& source)
    : autoPong_(autoPong) {
    Poco::Net::HTTPRequest req(Poco::Net::HTTPRequest::HTTP_GET, path,
                               Poco::Net::HTTPMessage::HTTP_1_1);
    if (source.empty()) {
        session_ = std::make_unique<Poco::Net::HTTPClientSession>("127.0.0.1", port);
    } else {
        Poco::Net::StreamSocket sock;
        sock.impl()->bind(Poco::Net::SocketAddress(source, 0), false);  // connect from `source`
        sock.connect(Poco::Net::SocketAddress("127.0.0.1", port));
        session_ = std::make_unique<Poco::Net::HTTPClientSession>(sock);
        req.setHost("127.0.0.1", port);
    }
    if (!origin.empty()) req.set("Origin", origin);
    Poco::Net::HTTPResponse resp;
    ws_ = std::make_unique<WebSocket>(*session_, req, resp);
    ws_->setNoDelay(true);
    ws_->setMaxPayloadSize(64 * 1024 * 1024);
}

WsClient::~WsClient() {
    try {
        ws_->close();
    } catch (...) {}
}

void WsClient::send(const std::string& text) {
    ws_->sendFrame(text.data(), static_cast<int>(text.size()), WebSocket::FRAME_TEXT);
}

void WsClient::sendBinary(const std::vector<uint8_t>& bytes) {
    ws_->sendFrame(bytes.data(), static_cast<int>(bytes.size()), WebSocket::FRAME_BINARY);
}

void WsClient::sendFrame(const void* data, int size, int flags) {
    ws_->sendFrame(data, size, flags);
}

WsClient::Frame WsClient::receive(int timeoutMs) {
    Frame f;
    if (closed_) {
        f.closed = true;
        f.closeCode = closeCode_;
        return f;
    }
    try {
        ws_->setReceiveTimeout(Poco::Timespan(static_cast<long>(timeoutMs) * 1000));
        Poco::Buffer<char> buf(0);
        int flags = 0;
        int n = ws_->receiveFrame(buf, flags);
        if (n == 0 && flags == 0) {
            closed_ = true;
            closeCode_ = closeCode_ ? closeCode_ : 1006;
            f.closed = true;
            f.closeCode = closeCode_;
            return f;
        }
        f.opcode = flags & WebSocket::FRAME_OP_BITMASK;
        f.data.assign(buf.begin(), static_cast<size_t>(n));
        if (f.opcode == WebSocket::FRAME_OP_CLOSE) {
            closed_ = true;
            closeCode_ = n >= 2 ? ((static_cast<unsigned char>(f.data[0]) << 8) |
                                   static_cast<unsigned char>(f.data[1]))
                                : 1005;
            f.closed = true;
            f.closeCode = closeCode_;
            try {  // answer the close handshake like a polite peer
                ws_->sendFrame(f.data.data(), static_cast<int>(std::min<size_t>(f.data.size(), 2)),
                               WebSocket::FRAME_OP_CLOSE | WebSocket::FRAME_FLAG_FIN);
            } catch (...) {}
        }
    } catch (const Poco::TimeoutException&) {
        f.timeout = true;
    } catch (const Poco::Exception&) {
        closed_ = true;
        closeCode_ = closeCode_ ? closeCode_ : 1006;
        f.closed = true;
        f.closeCode = closeCode_;
    }
    return f;
}

Json WsClient::next(int timeoutMs) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeoutMs);
    for (;;) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                              deadline - std::chrono::steady_clock::now())
                              .count();
        if (left <= 0) return nullptr;
        Frame f = receive(static_cast<int>(left));
        if (f.timeout || f.closed) return nullptr;
        if (f.opcode != WebSocket::FRAME_OP_TEXT) continue;
        Json j = parseJson(f.data);
        if (!j) continue;
        if (answerIfPing(j)) continue;
        return j;
    }
}

bool WsClient::answerIfPing(const Json& j) {
    if (!autoPong_ || !j || str(j, "type") != "ping") return false;
    send("{\"type\":\"pong\",\"timestamp\":" + std::to_string(j->getValue<int64_t>("timestamp")) +
         ",\"serverTime\":0}");
    return true;
}

Json WsClient::waitFor(const std::string& type, int timeoutMs) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeoutMs);
    for (;;) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                              deadline - std::chrono::steady_clock::now())
                              .count();
        if (left <= 0) return nullptr;
        Json j = next(static_cast<int>(left));
        if (!j) return nullptr;
        if (str(j, "type") == type) return j;
    }
}

std::string WsClient::waitBinary(int timeoutMs) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeoutMs);
    for (;;) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                              deadline - std::chrono::steady_clock::now())
                              .count();
        if (left <= 0) return {};
        Frame f = receive(static_cast<int>(left));
        if (f.timeout || f.closed) return {};
        if (f.opcode == WebSocket::FRAME_OP_BINARY) return f.data;
        if (f.opcode == WebSocket::FRAME_OP_TEXT) answerIfPing(parseJson(f.data));
    }
}

int WsClient::waitClose(int timeoutMs) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeoutMs);
    while (!closed_) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                              deadline - std::chrono::steady_clock::now())
                              .count();
        if (left <= 0) return -1;
        Frame f = receive(static_cast<int>(left));
        if (f.closed) break;
        if (f.opcode == WebSocket::FRAME_OP_TEXT) answerIfPing(parseJson(f.data));
    }
    return closeCode_;
}

std::string agentHandshake(const std::string& clientId, const std::string& token) {
    return "{\"type\":\"handshake\",\"protocol\":1,\"role\":\"desktop\",\"clientId\":\"" +
           clientId + "\",\"token\":\"" + token +
           "\",\"name\":\"Test PC\",\"hostname\":\"testhost\",\"monitors\":[{\"index\":0,\"name\":"
           "\"HDMI-1\",\"x\":0,\"y\":0,\"width\":1920,\"height\":1080,\"primary\":true}],"
           "\"capabilities\":{\"codecs\":[\"jpeg\"],\"input\":true}}";
}

std::string viewerHandshake(const std::string& token) {
    return "{\"type\":\"handshake\",\"protocol\":1,\"role\":\"viewer\",\"token\":\"" + token +
           "\"}";
}

std::unique_ptr<WsClient> subscribedViewer(uint16_t port, const std::string& desktop) {
    auto ws = std::make_unique<WsClient>(port, "/ws/viewer", true);
    ws->send(viewerHandshake());
    if (!ws->waitFor("handshake_ack", 3000)) throw std::runtime_error("viewer: no handshake_ack");
    ws->send("{\"type\":\"subscribe\",\"desktopClientId\":\"" + desktop + "\"}");
    if (!ws->waitFor("subscribed", 3000)) throw std::runtime_error("viewer: not subscribed");
    return ws;
}

HttpResult httpRequest(uint16_t port, const std::string& method, const std::string& path,
                       const std::string& body) {
    Poco::Net::HTTPClientSession s("127.0.0.1", port);
    s.setTimeout(Poco::Timespan(5, 0));
    Poco::Net::HTTPRequest req(method, path, Poco::Net::HTTPMessage::HTTP_1_1);
    if (!body.empty() || method == "POST") {
        req.setContentType("application/json");
        req.setContentLength(static_cast<std::streamsize>(body.size()));
        s.sendRequest(req) << body;
    } else {
        s.sendRequest(req);
    }
    Poco::Net::HTTPResponse resp;
    std::istream& in = s.receiveResponse(resp);
    HttpResult r;
    r.status = resp.getStatus();
    Poco::StreamCopier::copyToString(in, r.body);
    return r;
}

HttpResult httpRequest(uint16_t port, const std::string& method, const std::string& path,
                       const std::vector<std::pair<std::string, std::string>>& headers,
                       const std::string& body) {
    Poco::Net::HTTPClientSession s("127.0.0.1", port);
    s.setTimeout(Poco::Timespan(5, 0));
    Poco::Net::HTTPRequest req(method, path, Poco::Net::HTTPMessage::HTTP_1_1);
    for (const auto& [name, value] : headers) req.set(name, value);
    if (!body.empty() || method == "POST") {
        req.setContentLength(static_cast<std::streamsize>(body.size()));
        s.sendRequest(req) << body;
    } else {
        s.sendRequest(req);
    }
    Poco::Net::HTTPResponse resp;
    std::istream& in = s.receiveResponse(resp);
    HttpResult r;
    r.status = resp.getStatus();
    Poco::StreamCopier::copyToString(in, r.body);
    return r;
}

namespace {

// Sends `request` as raw bytes and reads until `complete(answer so far)`, the peer closes or 5 s
// pass (a timeout or reset ends the read: what arrived is the answer).
std::string rawExchange(uint16_t port, const std::string& request,
                        const std::function<bool(const std::string&)>& complete) {
    Poco::Net::StreamSocket sock(Poco::Net::SocketAddress("127.0.0.1", port));
    sock.setReceiveTimeout(Poco::Timespan(5, 0));
    sock.sendBytes(request.data(), static_cast<int>(request.size()));
    std::string out;
    char buf[4096];
    try {
        while (!complete(out)) {
            const int n = sock.receiveBytes(buf, sizeof buf);
            if (n <= 0) break;
            out.append(buf, static_cast<size_t>(n));
        }
    } catch (const Poco::Exception&) {}
    return out;
}

// True once `out` holds a whole head and its Content-Length bytes of body.
bool holdsOneAnswer(const std::string& out) {
    const auto headEnd = out.find("\r\n\r\n");
    if (headEnd == std::string::npos) return false;
    std::size_t length = 0;
    const auto cl = out.find("Content-Length: ");
    if (cl != std::string::npos && cl < headEnd)
        length = std::stoul(out.substr(cl + 16, out.find("\r\n", cl) - cl - 16));
    return out.size() >= headEnd + 4 + length;
}

}  // namespace

std::string rawHttp(uint16_t port, const std::string& request) {
    return rawExchange(port, request, [](const std::string&) { return false; });
}

std::string httpAnswer(uint16_t port, const std::string& request) {
    return rawExchange(port, request, holdsOneAnswer);
}

// ---- SwitchableStore: forwards each function to the real plugin unless switched down.

struct SwitchableStore::State {
    ds_store_vtable real{};
    void* instance = nullptr;
    std::atomic<bool> down{false};
    std::atomic<bool> completeDown{false};
};

namespace {

template <typename T, T Member>
struct Forward;
template <typename... A, ds_status (*ds_store_vtable::*Member)(void*, A...)>
struct Forward<ds_status (*ds_store_vtable::*)(void*, A...), Member> {
    static ds_status fn(void* self, A... a) {
        auto* state = static_cast<SwitchableStore::State*>(self);
        bool isComplete = false;
        if constexpr (std::is_same_v<decltype(Member),
                                     decltype(&ds_store_vtable::complete_command)>)
            isComplete = Member == &ds_store_vtable::complete_command;
        if (state->down.load() || (isComplete && state->completeDown.load())) {
            // Every store function ends with (char *err, size_t err_size).
            auto args = std::forward_as_tuple(a...);
            char* err = std::get<sizeof...(A) - 2>(args);
            const size_t size = std::get<sizeof...(A) - 1>(args);
            if (err && size) std::snprintf(err, size, "store server unreachable (test switch)");
            return DS_ERR_STORE_UNAVAILABLE;
        }
        return (state->real.*Member)(state->instance, a...);
    }
};
#define DS_FORWARD(name) \
    vt_.name = &Forward<decltype(&ds_store_vtable::name), &ds_store_vtable::name>::fn

}  // namespace

SwitchableStore::SwitchableStore(const ds_store_vtable& real, void* instance)
    : state_(std::make_shared<State>()) {
    state_->real = real;
    state_->instance = instance;
    // Only the functions named here: one added later stays NULL (never called with our State).
    vt_.struct_size = sizeof(ds_store_vtable);
    DS_FORWARD(check);
    DS_FORWARD(register_client);
    DS_FORWARD(touch_client);
    DS_FORWARD(unregister_client);
    DS_FORWARD(list_clients);
    DS_FORWARD(reap_clients);
    DS_FORWARD(unregister_instance_clients);
    DS_FORWARD(upsert_instance);
    DS_FORWARD(list_instances);
    DS_FORWARD(enqueue_command);
    DS_FORWARD(claim_commands);
    DS_FORWARD(complete_command);
    DS_FORWARD(get_command);
    DS_FORWARD(expire_commands);
    if (real.poll_notifications) DS_FORWARD(poll_notifications);
    if (real.purge_commands) DS_FORWARD(purge_commands);  // store ABI 1.1
}
#undef DS_FORWARD

deskstream::relay::StoreClient SwitchableStore::client() const {
    return deskstream::relay::StoreClient(&vt_, state_.get());
}
void SwitchableStore::setDown(bool down) { state_->down = down; }
bool SwitchableStore::down() const { return state_->down; }
void SwitchableStore::setCompleteDown(bool down) { state_->completeDown = down; }

bool eventually(const std::function<bool()>& cond, int timeoutMs) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeoutMs);
    while (std::chrono::steady_clock::now() < deadline) {
        if (cond()) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return cond();
}

RelayOptions RelayTest::testOptions() {
    RelayOptions o;
    o.listen = "127.0.0.1:0";
    o.heartbeatIntervalMs = 150;
    o.missedLimit = 2;
    o.handshakeTimeoutMs = 600;
    o.reaperIntervalMs = 200;
    o.registrationTtlMs = 60000;
    o.maxMessageBytes = 256 * 1024;
    o.closeGraceMs = 300;
    o.sendTimeoutMs = 2000;
    o.receiveTimeoutMs = 2000;
    o.badMessageLimit = 20;
    o.httpMaxThreads = 64;
    return o;
}

void RelayTest::SetUp() {
    static bool loggerSet = [] {
        Poco::Logger::root().setChannel(Poco::AutoPtr<Poco::Channel>(new Poco::ConsoleChannel));
        // DS_RELAY_TEST_LOG=information (or debug) shows the relay's log while debugging.
        const char* level = std::getenv("DS_RELAY_TEST_LOG");
        Poco::Logger::root().setLevel(level && *level ? level : "warning");
        return true;
    }();
    (void)loggerSet;
    std::random_device rd;
    dir = (std::filesystem::temp_directory_path() /
           ("ds-relay-it-" + std::to_string(rd()) + std::to_string(rd())))
              .string();
    std::filesystem::create_directories(dir);
    dbPath = dir + "/relay.db";
    plugin = std::make_unique<ds_test::LoadedPlugin>(ds_test::pluginPath("store", "sqlite"));
    ds_test::TestConfig config(
        "store.sqlite", {{"path", dbPath}, {"busy_timeout_ms", "100"}, {"synchronous", "normal"}});
    char err[512] = {0};
    ds_status st =
        plugin->store().create(host.api(), config.get(), &storeInstance, err, sizeof err);
    ASSERT_EQ(st, DS_OK) << "SQLite store plugin could not open " << dbPath << ": " << err;
    store = std::make_unique<deskstream::relay::StoreClient>(&plugin->store(), storeInstance);
    startRelay(testOptions());
}

void RelayTest::startRelay(RelayOptions o) {
    if (relay) relay->stop();
    relay.reset();
    o.listen = "127.0.0.1:0";
    relay = std::make_unique<deskstream::relay::Relay>(o, *store, Poco::Logger::get("relay-test"));
    relay->start();
    ASSERT_NE(relay->port(), 0);
}

SwitchableStore& RelayTest::startRelayWithSwitchableStore(RelayOptions o) {
    if (relay) relay->stop();
    relay.reset();
    switchable = std::make_unique<SwitchableStore>(plugin->store(), storeInstance);
    o.listen = "127.0.0.1:0";
    relay = std::make_unique<deskstream::relay::Relay>(o, switchable->client(),
                                                       Poco::Logger::get("relay-test"));
    relay->start();
    return *switchable;
}

void RelayTest::TearDown() {
    if (relay) relay->stop();
    relay.reset();
    if (plugin && storeInstance) plugin->store().destroy(storeInstance);
    storeInstance = nullptr;
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
}

std::unique_ptr<WsClient> RelayTest::connectAgent(const std::string& clientId,
                                                  const std::string& token) {
    auto c = std::make_unique<WsClient>(port(), "/ws/agent");
    c->send(agentHandshake(clientId, token));
    Json ack = c->waitFor("handshake_ack");
    EXPECT_TRUE(ack) << "no handshake_ack for " << clientId;
    return c;
}

std::unique_ptr<WsClient> RelayTest::connectViewer(const std::string& token) {
    auto c = std::make_unique<WsClient>(port(), "/ws/viewer");
    c->send(viewerHandshake(token));
    Json ack = c->waitFor("handshake_ack");
    EXPECT_TRUE(ack) << "no viewer handshake_ack";
    return c;
}

std::vector<deskstream::relay::ClientRecord> RelayTest::rows() {
    std::vector<deskstream::relay::ClientRecord> out;
    auto st = store->listClients(out);
    EXPECT_TRUE(st.ok()) << st.describe();
    return out;
}

bool RelayTest::hasRow(const std::string& clientId) {
    for (const auto& r : rows())
        if (r.clientId == clientId) return true;
    return false;
}

double metricValue(const std::string& exposition, const std::string& series) {
    std::istringstream in(exposition);
    for (std::string line; std::getline(in, line);) {
        if (line.size() > series.size() && line.compare(0, series.size(), series) == 0 &&
            line[series.size()] == ' ')
            return std::stod(line.substr(series.size() + 1));
    }
    return -1;
}

int promtoolCheckMetrics(const std::string& exposition, std::string& output) {
    char path[] = "/tmp/ds-metrics-XXXXXX";
    const int fd = mkstemp(path);
    if (fd < 0) throw std::runtime_error("cannot create a temporary file");
    {
        std::ofstream f(path);
        f << exposition;
    }
    ::close(fd);
    const std::string cmd = "promtool check metrics < '" + std::string(path) + "' 2>&1";
    FILE* p = popen(cmd.c_str(), "r");
    if (!p) throw std::runtime_error("cannot run promtool");
    output.clear();
    char buf[512];
    while (size_t n = fread(buf, 1, sizeof buf, p)) output.append(buf, n);
    const int status = pclose(p);
    std::remove(path);
    const int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    if (code == 127)
        output = "promtool not found (apt-get install prometheus; scripts/bootstrap.sh does it): " +
                 output;
    return code;
}

}  // namespace ds_itest
