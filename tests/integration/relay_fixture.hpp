// Integration fixture for the relay: a real relay on 127.0.0.1 (free port), a real SQLite store
// plugin loaded through its entry symbol, and Poco::Net::WebSocket clients.
#pragma once

#include "deskstream/relay/relay.hpp"
#include "ds_test/plugin_fixture.hpp"

#include <Poco/JSON/Object.h>
#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/WebSocket.h>

#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace ds_itest {

using Json = Poco::JSON::Object::Ptr;
using deskstream::relay::RelayOptions;

// Parses a JSON object; null when the text is not one.
Json parseJson(const std::string& text);
std::string str(const Json& o, const std::string& key);

// One WebSocket client. With autoPong it answers the relay's JSON pings (a healthy peer).
class WsClient {
public:
    // `source`: the local address to connect from (e.g. "127.0.0.2": limits per address).
    WsClient(uint16_t port, const std::string& path, bool autoPong = true,
             const std::string& origin = "", const std::string& source = "");
    ~WsClient();

    void send(const std::string& text);
    void sendBinary(const std::vector<uint8_t>& bytes);
    void sendFrame(const void* data, int size, int flags);

    struct Frame {
        int opcode = 0;  // Poco FRAME_OP_*; 0 with timeout/closed
        std::string data;
        bool timeout = false;
        bool closed = false;  // CLOSE received or connection dropped
        int closeCode = 0;
    };
    Frame receive(int timeoutMs);
    // Next text message as JSON (pings answered/skipped when autoPong); null on timeout/close.
    Json next(int timeoutMs = 2000);
    // Skips messages until one of `type` arrives; null on timeout/close.
    Json waitFor(const std::string& type, int timeoutMs = 2000);
    // Next binary message; empty on timeout/close.
    std::string waitBinary(int timeoutMs = 2000);
    // Reads until the CLOSE frame: its code; -1 on timeout; 1006 when dropped without CLOSE.
    int waitClose(int timeoutMs = 3000);
    bool closed() const { return closed_; }
    int closeCode() const { return closeCode_; }
    void setAutoPong(bool on) { autoPong_ = on; }
    // With autoPong: answers `j` when it is the relay's JSON ping (as the browser does) and
    // returns true; false for anything else.
    bool answerIfPing(const Json& j);

private:
    std::unique_ptr<Poco::Net::HTTPClientSession> session_;
    std::unique_ptr<Poco::Net::WebSocket> ws_;
    bool autoPong_;
    bool closed_ = false;
    int closeCode_ = 0;
};

std::string agentHandshake(const std::string& clientId, const std::string& token = "");
std::string viewerHandshake(const std::string& token = "");
// A viewer (autoPong) on `port`, handshaken and subscribed to `desktop`, 3 s for each answer;
// throws std::runtime_error when an answer does not come.
std::unique_ptr<WsClient> subscribedViewer(uint16_t port, const std::string& desktop);

struct HttpResult {
    int status = 0;
    std::string body;
};
HttpResult httpRequest(uint16_t port, const std::string& method, const std::string& path,
                       const std::string& body = "");

// The value of one series in a /metrics exposition, e.g.
// metricValue(text, "deskstream_relay_heartbeat_timeouts_total{role=\"viewer\"}"); -1 when absent.
double metricValue(const std::string& exposition, const std::string& series);
// Runs `promtool check metrics` on `exposition`: its exit code, and its output in `output`.
// promtool missing is a failure (Debian package prometheus, installed by scripts/bootstrap.sh).
int promtoolCheckMetrics(const std::string& exposition, std::string& output);
// The same with request headers (name, value); Content-Type is set only when given there.
HttpResult httpRequest(uint16_t port, const std::string& method, const std::string& path,
                       const std::vector<std::pair<std::string, std::string>>& headers,
                       const std::string& body);
// Sends `request` as raw bytes and returns everything the relay answered until it closed (or
// 5 s passed): status lines are checked as sent, URIs go out unencoded.
std::string rawHttp(uint16_t port, const std::string& request);
// The same, but reads one answer only: its head and Content-Length bytes of body (the relay
// keeps an HTTP/1.1 connection open, so reading until it closes would wait).
std::string httpAnswer(uint16_t port, const std::string& request);

// A real store plugin instance behind a switch: while down(), every call fails with
// DS_ERR_STORE_UNAVAILABLE as a store whose server is unreachable does; otherwise calls pass
// through unchanged.
class SwitchableStore {
public:
    SwitchableStore(const ds_store_vtable& real, void* instance);
    deskstream::relay::StoreClient client() const;
    void setDown(bool down);
    bool down() const;
    // Only complete_command fails (a result that cannot be stored); everything else works.
    void setCompleteDown(bool down);

    struct State;

private:
    std::shared_ptr<State> state_;
    ds_store_vtable vt_{};
};

// Polls `cond` every 10 ms until it holds or timeoutMs passed.
bool eventually(const std::function<bool()>& cond, int timeoutMs = 2000);

class RelayTest : public ::testing::Test {
protected:
    void SetUp() override;
    void TearDown() override;

    // Short timers so each test takes a fraction of a second to a few seconds.
    static RelayOptions testOptions();
    // (Re)starts the relay with `o` (listen forced to 127.0.0.1:0).
    void startRelay(RelayOptions o);
    // (Re)starts the relay over the fixture's store behind a SwitchableStore, which lives until
    // TearDown has stopped the relay.
    SwitchableStore& startRelayWithSwitchableStore(RelayOptions o);

    // Registered agent (handshake_ack checked) that answers pings.
    std::unique_ptr<WsClient> connectAgent(const std::string& clientId,
                                           const std::string& token = "");
    std::unique_ptr<WsClient> connectViewer(const std::string& token = "");

    std::vector<deskstream::relay::ClientRecord> rows();
    bool hasRow(const std::string& clientId);
    uint64_t counter(const std::string& name) { return relay->counters().at(name); }
    uint16_t port() const { return relay->port(); }

    std::string dir;
    std::string dbPath;
    ds_test::TestHost host;
    std::unique_ptr<ds_test::LoadedPlugin> plugin;
    void* storeInstance = nullptr;
    std::unique_ptr<deskstream::relay::StoreClient> store;
    std::unique_ptr<SwitchableStore> switchable;
    std::unique_ptr<deskstream::relay::Relay> relay;  // declared last: destroyed first
};

}  // namespace ds_itest
