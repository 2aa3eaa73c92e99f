// RelayConnection: the relay's per-connection rules with a fake clock and no sockets.
// A small in-test host (the same steps as host/relay's pump, minus the I/O) wires the
// connections to a real core Registry, so registration_failed and replacement are the
// Registry's real answers.
#include "deskstream/core/auth.hpp"
#include "deskstream/core/relay_connection.hpp"
#include "deskstream/core/tickets.hpp"

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

using namespace deskstream::core;
using namespace std::chrono_literals;
using Kind = RelayConnectionConfig::Kind;

namespace {

constexpr WallMs kWall = 1'700'000'000'000;
const TimePoint kT0{1'000'000};  // connection opened

RelayConnectionConfig config(Kind kind) {
    RelayConnectionConfig c;
    c.kind = kind;
    c.heartbeatInterval = 100ms;
    c.missedLimit = 3;
    c.handshakeTimeout = 500ms;
    c.badMessageLimit = 3;
    c.badMessageWindow = 10s;
    c.maxMessageBytes = 1 << 20;
    return c;
}

const std::string kAgentHello =
    R"({"type":"handshake","protocol":1,"role":"desktop","clientId":"pc1"})";
const std::string kViewerHello = R"({"type":"handshake","protocol":1,"role":"viewer"})";

// What happened to one connection, as the host saw it.
struct Peer {
    std::unique_ptr<RelayConnection> conn;
    std::vector<std::string> sent;  // texts, in order
    int closeCode = 0;              // first close asked for
    std::string closeReason;
    std::map<RelayCounter, std::uint64_t> counts;
    std::vector<RelayAction> other;  // actions the host would hand to other parts
    std::vector<std::string> wire;   // what the peer would see, in order: texts and "close N"
};

// The host side in miniature: performs actions against a real Registry (store writes
// succeed unless storeFails), records sends and closes per connection.
struct Host {
    Registry registry{RegistryConfig{"inst-1", 100, 10, 1000}};
    std::map<ConnId, Peer> peers;
    bool storeFails = false;

    ConnId open(ConnId id, Kind kind, TimePoint at = kT0, std::string secret = {}) {
        auto c = config(kind);
        c.authSecret = std::move(secret);
        peers[id].conn = std::make_unique<RelayConnection>(c, at);
        return id;
    }
    Peer& peer(ConnId id) { return peers.at(id); }

    void text(ConnId id, const std::string& t, TimePoint now) {
        perform(id, peer(id).conn->onText(t, now, kWall), now);
    }
    void tick(ConnId id, TimePoint now) { perform(id, peer(id).conn->onTick(now), now); }

    void performRegistry(Actions actions, TimePoint now) {
        for (auto& a : actions) {
            if (auto* s = std::get_if<SendAction>(&a)) {
                peer(s->conn).sent.push_back(serialize(s->message));
                peer(s->conn).wire.push_back(serialize(s->message));
            } else if (auto* c = std::get_if<CloseAction>(&a)) {
                Peer& p = peer(c->conn);
                p.wire.push_back("close " + std::to_string(c->code));
                if (p.closeCode == 0) {
                    p.closeCode = c->code;
                    p.closeReason = c->reason;
                }
                p.conn->onClosedByRelay();
            } else if (auto* r = std::get_if<StoreRegisterAction>(&a)) {
                performRegistry(registry.onStoreResult(r->conn, !storeFails,
                                                       storeFails ? "store down" : "", kWall),
                                now);
            }
        }
    }

    void perform(ConnId id, RelayActions actions, TimePoint now) {
        for (auto& a : actions) {
            Peer& p = peer(id);
            if (auto* s = std::get_if<relay_action::Send>(&a)) {
                p.sent.push_back(s->text);
                p.wire.push_back(s->text);
            } else if (auto* c = std::get_if<relay_action::Close>(&a)) {
                p.wire.push_back("close " + std::to_string(c->code));
                if (p.closeCode == 0) {
                    p.closeCode = c->code;
                    p.closeReason = c->reason;
                }
            } else if (auto* n = std::get_if<relay_action::Count>(&a)) {
                p.counts[n->counter] += n->n;
            } else if (auto* rej = std::get_if<relay_action::RejectAgent>(&a)) {
                performRegistry(registry.rejectAgent(id, rej->clientId, rej->code, rej->message),
                                now);
            } else if (auto* reg = std::get_if<relay_action::RegisterAgent>(&a)) {
                performRegistry(registry.onAgentHandshake(id, reg->handshake, reg->nowMs), now);
                perform(id, p.conn->onAgentRegistered(registry.agentByConn(id), now), now);
            } else if (auto* rv = std::get_if<relay_action::RegisterViewer>(&a)) {
                performRegistry(registry.onViewerHandshake(id, rv->scope), now);
                perform(id, p.conn->onViewerRegistered(registry.viewerId(id).value_or(""), now),
                        now);
            } else if (auto* sub = std::get_if<relay_action::SubscribeViewer>(&a)) {
                performRegistry(registry.onSubscribe(id, sub->subscribe), now);
            } else if (!std::holds_alternative<relay_action::Log>(a)) {
                p.other.push_back(a);
            }
        }
    }
};

bool contains(const std::vector<std::string>& texts, const std::string& part) {
    for (const auto& t : texts)
        if (t.find(part) != std::string::npos) return true;
    return false;
}

}  // namespace

// ---------------------------------------------------------------- handshake first

struct FirstMessageCase {
    const char* name;
    Kind kind;
    const char* text;  // nullptr: a binary message
    const char* answerContains;
    RelayCounter counter;
};

TEST(RelayConnection, AnythingBeforeTheHandshakeClosesWith1008) {
    const FirstMessageCase cases[] = {
        {"agent ping first", Kind::Agent, R"({"type":"ping","timestamp":1})", "registration_failed",
         RelayCounter::UnknownTypes},
        {"agent bad json", Kind::Agent, "{nope", "registration_failed", RelayCounter::BadJson},
        {"agent binary first", Kind::Agent, nullptr, "registration_failed",
         RelayCounter::BinaryBeforeHandshake},
        {"agent viewer role", Kind::Agent, kViewerHello.c_str(), "registration_failed",
         RelayCounter::RegistrationFailures},
        {"viewer subscribe first", Kind::Viewer, R"({"type":"subscribe","desktopClientId":"pc1"})",
         "the first message must be a handshake", RelayCounter::UnknownTypes},
        {"viewer bad json", Kind::Viewer, "[1,", "\"error\"", RelayCounter::BadJson},
        {"viewer binary first", Kind::Viewer, nullptr, "the first message must be a handshake",
         RelayCounter::BinaryBeforeHandshake},
        {"viewer desktop role", Kind::Viewer, kAgentHello.c_str(), "viewer endpoint",
         RelayCounter::BadMessages},
        {"viewer wrong protocol", Kind::Viewer,
         R"({"type":"handshake","protocol":2,"role":"viewer"})", "unsupported protocol version",
         RelayCounter::BadMessages},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.name);
        Host host;
        const ConnId id = host.open(7, c.kind);
        if (c.text) {
            host.text(id, c.text, kT0 + 1ms);
        } else {
            host.perform(id, host.peer(id).conn->onBinary(std::vector<std::uint8_t>(80, 0), kT0),
                         kT0);
        }
        Peer& p = host.peer(id);
        EXPECT_EQ(p.closeCode, 1008);
        EXPECT_TRUE(contains(p.sent, c.answerContains)) << (p.sent.empty() ? "" : p.sent[0]);
        EXPECT_GE(p.counts[c.counter], 1u);
        EXPECT_EQ(p.conn->state(), RelayConnection::State::Error);
        EXPECT_EQ(p.conn->nextDeadline(), TimePoint::max());
        // The error state is final: further input produces nothing.
        EXPECT_TRUE(p.conn->onText(kAgentHello, kT0 + 2ms, kWall).empty());
        EXPECT_TRUE(p.conn->onTick(kT0 + 1h).empty());
        EXPECT_EQ(host.registry.agentCount() + host.registry.viewerCount(), 0u);
    }
}

// ---------------------------------------------------------------- handshake timeout

TEST(RelayConnection, HandshakeTimeoutClosesAtTheDeadlineAndNotBefore) {
    for (Kind kind : {Kind::Agent, Kind::Viewer}) {
        Host host;
        const ConnId id = host.open(1, kind);
        RelayConnection& c = *host.peer(id).conn;
        EXPECT_EQ(c.nextDeadline(), kT0 + 500ms);
        host.tick(id, kT0 + 500ms - 1us);
        EXPECT_EQ(host.peer(id).closeCode, 0);
        host.tick(id, c.nextDeadline());
        EXPECT_EQ(host.peer(id).closeCode, 1008);
        EXPECT_EQ(host.peer(id).closeReason, "handshake timeout");
        EXPECT_EQ(host.peer(id).counts[RelayCounter::HandshakeTimeouts], 1u);
        EXPECT_EQ(c.state(), RelayConnection::State::Closed);
    }
}

TEST(RelayConnection, AHandshakeInTimeDisarmsTheTimer) {
    Host host;
    const ConnId id = host.open(1, Kind::Viewer);
    host.text(id, kViewerHello, kT0 + 499ms);
    EXPECT_TRUE(host.peer(id).conn->open());
    EXPECT_TRUE(contains(host.peer(id).sent, "handshake_ack"));
    // The next deadline is now the first ping, not the handshake timeout.
    EXPECT_EQ(host.peer(id).conn->nextDeadline(), kT0 + 499ms);
}

// ---------------------------------------------------------------- heartbeat

TEST(RelayConnection, HeartbeatClosesAtExactlyIntervalTimesMissedPlusOne) {
    for (Kind kind : {Kind::Agent, Kind::Viewer}) {
        SCOPED_TRACE(kind == Kind::Agent ? "agent" : "viewer");
        Host host;
        const ConnId id = host.open(1, kind);
        const TimePoint t1 = kT0 + 10ms;
        host.text(id, kind == Kind::Agent ? kAgentHello : kViewerHello, t1);
        RelayConnection& c = *host.peer(id).conn;
        ASSERT_TRUE(c.open());
        const TimePoint death = t1 + 100ms * (3 + 1);
        // The host sleeps until each deadline; a silent peer gets 3 pings, then the close.
        int pings = 0;
        while (c.nextDeadline() < death) {
            const TimePoint at = c.nextDeadline();
            const size_t before = host.peer(id).sent.size();
            host.tick(id, at);
            pings += static_cast<int>(host.peer(id).sent.size() - before);
        }
        EXPECT_EQ(pings, 4);  // at t1, +100, +200, +300 ms (the one at t1 opens the schedule)
        host.tick(id, death - 1us);
        EXPECT_EQ(host.peer(id).closeCode, 0) << "closed 1 us early";
        EXPECT_EQ(c.nextDeadline(), death);
        host.tick(id, death);
        EXPECT_EQ(host.peer(id).closeCode, 4008);
        EXPECT_EQ(host.peer(id).counts[RelayCounter::HeartbeatTimeouts], 1u);
        EXPECT_EQ(c.nextDeadline(), TimePoint::max());
    }
}

TEST(RelayConnection, AnyMessageProvesLife) {
    Host host;
    const ConnId id = host.open(1, Kind::Viewer);
    host.text(id, kViewerHello, kT0);
    RelayConnection& c = *host.peer(id).conn;
    host.text(id, R"({"type":"pong","timestamp":5})", kT0 + 350ms);
    host.tick(id, kT0 + 400ms);
    EXPECT_EQ(host.peer(id).closeCode, 0);
    EXPECT_EQ(c.heartbeat().deathDeadline(), kT0 + 350ms + 400ms);
}

// ---------------------------------------------------------------- registration

TEST(RelayConnection, RegistrationFailedIsFollowedBy1008) {
    struct Case {
        const char* name;
        std::string hello;
        bool storeFails;
        const char* code;
    } cases[] = {
        {"store refuses the write", kAgentHello, true, "store_unavailable"},
        {"bad clientId", R"({"type":"handshake","protocol":1,"role":"desktop","clientId":"a b"})",
         false, "bad_request"},
        {"other protocol", R"({"type":"handshake","protocol":9,"role":"desktop","clientId":"pc1"})",
         false, "protocol_mismatch"},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.name);
        Host host;
        host.storeFails = c.storeFails;
        const ConnId id = host.open(3, Kind::Agent);
        host.text(id, c.hello, kT0);
        Peer& p = host.peer(id);
        ASSERT_FALSE(p.sent.empty());
        EXPECT_NE(p.sent.back().find("registration_failed"), std::string::npos) << p.sent.back();
        EXPECT_NE(p.sent.back().find(c.code), std::string::npos) << p.sent.back();
        EXPECT_EQ(p.closeCode, 1008);
        // On the wire: registration_failed first, then the close (nothing in between).
        ASSERT_GE(p.wire.size(), 2u);
        EXPECT_NE(p.wire[0].find("registration_failed"), std::string::npos) << p.wire[0];
        EXPECT_EQ(p.wire[1], "close 1008");
        EXPECT_GE(p.counts[RelayCounter::RegistrationFailures], 1u);
        EXPECT_FALSE(p.conn->open());
        EXPECT_EQ(host.registry.agentCount(), 0u);
    }
}

TEST(RelayConnection, TokenIsCheckedWhenASecretIsSet) {
    const std::string secret = "s3cret";
    const std::string good = mintToken(secret, Role::Desktop, "pc1", 1h, kWall);
    Host host;
    const ConnId refused = host.open(1, Kind::Agent, kT0, secret);
    host.text(refused, kAgentHello, kT0);
    EXPECT_EQ(host.peer(refused).closeCode, 1008);
    EXPECT_TRUE(contains(host.peer(refused).sent, "unauthorized"));
    EXPECT_EQ(host.peer(refused).counts[RelayCounter::AuthFailures], 1u);

    const ConnId ok = host.open(2, Kind::Agent, kT0, secret);
    host.text(ok,
              R"({"type":"handshake","protocol":1,"role":"desktop","clientId":"pc1","token":")" +
                  good + "\"}",
              kT0);
    EXPECT_TRUE(host.peer(ok).conn->open());
    EXPECT_EQ(host.peer(ok).conn->peerId(), "pc1");

    const ConnId viewer = host.open(3, Kind::Viewer, kT0, secret);
    host.text(viewer, kViewerHello, kT0);  // no token
    EXPECT_EQ(host.peer(viewer).closeCode, 1008);
    EXPECT_TRUE(contains(host.peer(viewer).sent, "unauthorized"));
}

TEST(RelayConnection, ASecondRegistrationReplacesTheFirstWith4000) {
    Host host;
    const ConnId first = host.open(1, Kind::Agent);
    host.text(first, kAgentHello, kT0);
    ASSERT_TRUE(host.peer(first).conn->open());
    EXPECT_EQ(host.peer(first).counts[RelayCounter::Registrations], 1u);
    const ConnId second = host.open(2, Kind::Agent);
    host.text(second, kAgentHello, kT0 + 1s);
    EXPECT_TRUE(host.peer(second).conn->open());
    EXPECT_EQ(host.peer(first).closeCode, 4000);
    EXPECT_EQ(host.peer(first).closeReason, "replaced");
    EXPECT_EQ(host.peer(second).closeCode, 0);
    // The replaced connection is finished: no pings, no deadline.
    EXPECT_EQ(host.peer(first).conn->nextDeadline(), TimePoint::max());
    EXPECT_TRUE(host.peer(first).conn->onTick(kT0 + 1h).empty());
    EXPECT_EQ(host.registry.findAgent("pc1")->conn, second);
}

// ---------------------------------------------------------------- what each side may send

struct AfterHandshakeCase {
    const char* name;
    Kind kind;
    std::string text;
    const char* answerContains;  // nullptr: no answer sent by the connection itself
    RelayCounter counter;        // kCount: none expected
};

TEST(RelayConnection, MessagesAfterTheHandshake) {
    const AfterHandshakeCase cases[] = {
        {"viewer subscribes to a desktop that is here", Kind::Viewer,
         R"({"type":"subscribe","desktopClientId":"pc1"})", "\"subscribed\"", RelayCounter::kCount},
        {"viewer subscribes to an unknown desktop", Kind::Viewer,
         R"({"type":"subscribe","desktopClientId":"nobody"})", "not_found", RelayCounter::kCount},
        {"viewer subscribe without desktop", Kind::Viewer, R"({"type":"subscribe"})",
         "desktopClientId", RelayCounter::BadJson},
        {"viewer sends an agent's message", Kind::Viewer,
         R"({"type":"command_result","commandId":"c1","status":"done"})", "\"error\"",
         RelayCounter::UnknownTypes},
        {"viewer handshakes twice", Kind::Viewer, kViewerHello, "already handshaken",
         RelayCounter::UnknownTypes},
        {"agent subscribes", Kind::Agent, R"({"type":"subscribe","desktopClientId":"pc1"})",
         "\"error\"", RelayCounter::UnknownTypes},
        {"agent handshakes twice", Kind::Agent, kAgentHello, "already registered",
         RelayCounter::UnknownTypes},
        {"agent ping gets a pong", Kind::Agent, R"({"type":"ping","timestamp":42})", "\"pong\"",
         RelayCounter::kCount},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.name);
        Host host;
        host.open(1, Kind::Agent);
        host.text(1, kAgentHello, kT0);  // desktop pc1 is registered here
        const ConnId id = c.kind == Kind::Agent ? 1 : host.open(2, Kind::Viewer);
        if (c.kind == Kind::Viewer) host.text(id, kViewerHello, kT0);
        Peer& p = host.peer(id);
        const size_t before = p.sent.size();
        const auto badBefore = p.counts[RelayCounter::BadMessages];
        host.text(id, c.text, kT0 + 1ms);
        std::vector<std::string> answers(p.sent.begin() + static_cast<long>(before), p.sent.end());
        ASSERT_NE(c.answerContains, nullptr);
        EXPECT_TRUE(contains(answers, c.answerContains)) << (answers.empty() ? "" : answers[0]);
        if (c.counter == RelayCounter::kCount) {
            EXPECT_EQ(p.counts[RelayCounter::BadMessages], badBefore);
        } else {
            EXPECT_EQ(p.counts[c.counter], 1u);
        }
        EXPECT_EQ(p.closeCode, 0);  // one bad message is answered, not fatal
        EXPECT_TRUE(p.conn->open());
    }
}

TEST(RelayConnection, ViewerActionsCarryWhatTheHostNeeds) {
    Host host;
    const ConnId v = host.open(2, Kind::Viewer);
    host.text(v, kViewerHello, kT0);
    const std::string viewerId = host.peer(v).conn->peerId();
    ASSERT_FALSE(viewerId.empty());
    host.text(v, R"({"type":"ping","timestamp":9})", kT0);
    host.text(v,
              R"({"type":"command","desktopClientId":"pc1","command":{"type":"request_keyframe"}})",
              kT0);
    auto& other = host.peer(v).other;
    ASSERT_EQ(other.size(), 2u);
    EXPECT_EQ(std::get<relay_action::AnswerViewerPing>(other[0]).timestamp, 9);
    EXPECT_EQ(std::get<relay_action::QueueCommand>(other[1]).viewerId, viewerId);
    // The outcome of the command: store trouble is answered but is no abuse.
    RelayConnection& c = *host.peer(v).conn;
    auto a = c.onCommandQueued(makeError(ErrorCode::Internal, "", "store down"), kT0);
    ASSERT_EQ(a.size(), 1u);
    EXPECT_NE(std::get<relay_action::Send>(a[0]).text.find("internal"), std::string::npos);
    EXPECT_EQ(c.badMessages(), 0);
}

TEST(RelayConnection, AgentFramesAreValidatedAndGetTheRelaysStreamId) {
    Host host;
    const ConnId a = host.open(1, Kind::Agent);
    host.text(a, kAgentHello, kT0);
    RelayConnection& c = *host.peer(a).conn;
    ASSERT_NE(c.streamId(), 0u);
    FrameHeader h;
    h.frameNumber = 5;
    h.streamId = 999;  // the agent's own idea: overwritten
    h.screenWidth = h.rectWidth = 2;
    h.screenHeight = h.rectHeight = 2;
    const std::vector<std::uint8_t> payload(10, 0xab);
    auto out = c.onBinary(buildFrame(h, payload.data(), payload.size()), kT0);
    const relay_action::ForwardFrame* f = nullptr;
    for (auto& x : out)
        if (auto* ff = std::get_if<relay_action::ForwardFrame>(&x)) f = ff;
    ASSERT_NE(f, nullptr);
    EXPECT_EQ(f->header.streamId, c.streamId());
    EXPECT_EQ(peekStreamId(f->bytes.data()), c.streamId());
    // A truncated frame is bad input, answered with an error.
    auto bad = c.onBinary(std::vector<std::uint8_t>(10, 0), kT0);
    bool answered = false;
    for (auto& x : bad)
        if (auto* s = std::get_if<relay_action::Send>(&x))
            answered = s->text.find("error") != std::string::npos;
    EXPECT_TRUE(answered);
}

// The frame order rules (core FrameOrderCheck) run on every agent frame: a frame for a monitor
// the handshake did not advertise, a number going backwards or one above 2^53-1 is a bad frame,
// answered and counted, and not forwarded; the order of accepted frames is unchanged by it.
TEST(RelayConnection, AgentFramesOutOfOrderOrForUnadvertisedMonitorsAreBadFrames) {
    Host host;
    const ConnId a = host.open(1, Kind::Agent);
    host.text(
        a,
        R"({"type":"handshake","protocol":1,"role":"desktop","clientId":"pc1",)"
        R"("monitors":[{"index":1,"name":"m1","x":0,"y":0,"width":2,"height":2,"primary":true}]})",
        kT0);
    RelayConnection& c = *host.peer(a).conn;
    ASSERT_TRUE(c.open());
    const std::vector<std::uint8_t> payload(4, 0xab);
    auto frame = [&](std::uint64_t number, int monitor) {
        FrameHeader h;
        h.frameNumber = number;
        h.monitor = monitor;
        h.screenWidth = h.rectWidth = 2;
        h.screenHeight = h.rectHeight = 2;
        return c.onBinary(buildFrame(h, payload.data(), payload.size()), kT0);
    };
    auto forwarded = [](const RelayActions& out) {
        for (auto& x : out)
            if (std::holds_alternative<relay_action::ForwardFrame>(x)) return true;
        return false;
    };
    auto badFrame = [](const RelayActions& out) {
        bool counted = false, answered = false;
        for (auto& x : out) {
            if (auto* n = std::get_if<relay_action::Count>(&x))
                counted |= n->counter == RelayCounter::BadFrames;
            if (auto* s = std::get_if<relay_action::Send>(&x))
                answered |= s->text.find("error") != std::string::npos;
        }
        return counted && answered;
    };
    EXPECT_TRUE(forwarded(frame(5, 1)));
    EXPECT_TRUE(forwarded(frame(6, 0)));  // 0: the combined picture
    auto unadvertised = frame(7, 2);
    EXPECT_FALSE(forwarded(unadvertised));
    EXPECT_TRUE(badFrame(unadvertised));
    auto backwards = frame(4, 1);
    EXPECT_FALSE(forwarded(backwards));
    EXPECT_TRUE(badFrame(backwards));
    auto tooBig = frame(FrameOrderCheck::kMaxFrameNumber + 1, 1);
    EXPECT_FALSE(forwarded(tooBig));
    EXPECT_TRUE(badFrame(tooBig));
    EXPECT_TRUE(forwarded(frame(FrameOrderCheck::kMaxFrameNumber, 1)));
    EXPECT_EQ(c.badMessages(), 3);
}

// A result the store could not keep is the relay's trouble: answered with `internal`, not counted
// as the agent's bad input. A result for a command the store does not know is bad input.
TEST(RelayConnection, AResultTheStoreCouldNotKeepIsNotTheAgentsBadInput) {
    Host host;
    const ConnId a = host.open(1, Kind::Agent);
    host.text(a, kAgentHello, kT0);
    RelayConnection& c = *host.peer(a).conn;
    for (int i = 0; i < 5; ++i) {  // above badMessageLimit (3): would close if it counted
        auto out = c.onCommandResultStored(makeError(ErrorCode::Internal, "", "store down"), kT0);
        ASSERT_EQ(out.size(), 1u);
        EXPECT_NE(std::get<relay_action::Send>(out[0]).text.find("internal"), std::string::npos);
    }
    EXPECT_EQ(c.badMessages(), 0);
    EXPECT_TRUE(c.open());
    auto unknown =
        c.onCommandResultStored(makeError(ErrorCode::NotFound, "commandId", "no command"), kT0);
    EXPECT_EQ(c.badMessages(), 1);
    bool counted = false;
    for (auto& x : unknown)
        if (auto* n = std::get_if<relay_action::Count>(&x))
            counted |= n->counter == RelayCounter::BadJson;
    EXPECT_TRUE(counted);
}

// Subscribing to a desktop connected nowhere is bad input: probing ids closes the connection
// once it is over badMessageLimit (3), as any other bad input (RepeatedBadInputCloses).
TEST(RelayConnection, SubscribingToADesktopConnectedNowhereIsBadInput) {
    Host host;
    const ConnId v = host.open(2, Kind::Viewer);
    host.text(v, kViewerHello, kT0);
    RelayConnection& c = *host.peer(v).conn;
    host.perform(v, c.onSubscribeUnknown("probe-1", kT0), kT0);
    host.perform(v, c.onSubscribeUnknown("probe-2", kT0 + 1ms), kT0 + 1ms);
    host.perform(v, c.onSubscribeUnknown("probe-3", kT0 + 2ms), kT0 + 2ms);
    Peer& p = host.peer(v);
    EXPECT_TRUE(contains(p.sent, "not_found"));
    EXPECT_TRUE(contains(p.sent, "probe-1"));
    EXPECT_EQ(p.closeCode, 0);
    host.perform(v, c.onSubscribeUnknown("probe-4", kT0 + 3ms), kT0 + 3ms);
    EXPECT_EQ(host.peer(v).closeCode, 1008);
    EXPECT_EQ(host.peer(v).counts[RelayCounter::AbuseCloses], 1u);
}

// ---------------------------------------------------------------- abuse

TEST(RelayConnection, RepeatedBadInputCloses) {
    const std::string tooLarge(70000, ' ');
    struct Case {
        const char* name;
        Kind kind;
        std::string text;
        int closesAfter;  // bad messages
        int code;
    } cases[] = {
        {"viewer: unknown types", Kind::Viewer, R"({"type":"nope"})", 4, 1008},
        {"agent: bad json", Kind::Agent, "{", 4, 1008},
        {"viewer: too large twice", Kind::Viewer, tooLarge, 2, 1009},
        {"agent: too large twice", Kind::Agent, tooLarge, 2, 1009},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.name);
        Host host;
        const ConnId id = host.open(1, c.kind);
        host.text(id, c.kind == Kind::Agent ? kAgentHello : kViewerHello, kT0);
        for (int i = 1; i < c.closesAfter; ++i) host.text(id, c.text, kT0 + 1ms * i);
        EXPECT_EQ(host.peer(id).closeCode, 0) << "closed too early";
        host.text(id, c.text, kT0 + 10ms);
        Peer& p = host.peer(id);
        EXPECT_EQ(p.closeCode, c.code);
        EXPECT_EQ(p.counts[RelayCounter::AbuseCloses], 1u);
        EXPECT_EQ(p.conn->badMessages(), c.closesAfter);
        EXPECT_EQ(p.conn->state(), RelayConnection::State::Error);
        EXPECT_TRUE(p.conn->onText(R"({"type":"ping","timestamp":1})", kT0 + 11ms, kWall).empty());
    }
}

TEST(RelayConnection, TransportErrorsAnswerCountAndRelease) {
    RelayConnection c(config(Kind::Viewer), kT0);
    c.onText(kViewerHello, kT0, kWall);
    auto out = c.onTransportError(1009, "message too large");
    ASSERT_FALSE(out.empty());
    EXPECT_NE(std::get<relay_action::Send>(out[2]).text.find("too_large"), std::string::npos);
    const auto& close = std::get<relay_action::Close>(out.back());
    EXPECT_EQ(close.code, 1009);
    EXPECT_TRUE(close.byTransport);
    EXPECT_EQ(c.state(), RelayConnection::State::Error);
    EXPECT_TRUE(c.onTransportError(1002, "again").empty());
}

// ---------------------------------------------------------------- token scopes (issue 14)

TEST(RelayConnection, ADesktopTokenRegistersOnlyItsOwnSub) {
    const std::string secret = "s3cret";
    Host host;
    const std::string forPc2 = mintToken(secret, Role::Desktop, "pc2", 1h, kWall);
    const ConnId c = host.open(1, Kind::Agent, kT0, secret);
    host.text(c,
              R"({"type":"handshake","protocol":1,"role":"desktop","clientId":"pc1","token":")" +
                  forPc2 + "\"}",
              kT0);
    EXPECT_EQ(host.peer(c).closeCode, 1008);
    EXPECT_TRUE(contains(host.peer(c).sent, "registration_failed"));
    EXPECT_TRUE(contains(host.peer(c).sent, "unauthorized"));
    EXPECT_FALSE(host.registry.findAgent("pc1").has_value());
    EXPECT_EQ(host.peer(c).counts[RelayCounter::AuthFailures], 1u);
}

TEST(RelayConnection, AViewerTokensScopeLimitsSubscribesAndCommands) {
    const std::string secret = "s3cret";
    Host host;
    for (ConnId id : {ConnId{10}, ConnId{11}}) {
        const std::string clientId = id == 10 ? "pc1" : "pc2";
        host.open(id, Kind::Agent, kT0, secret);
        host.text(id,
                  R"({"type":"handshake","protocol":1,"role":"desktop","clientId":")" + clientId +
                      R"(","token":")" + mintToken(secret, Role::Desktop, clientId, 1h, kWall) +
                      "\"}",
                  kT0);
        ASSERT_TRUE(host.peer(id).conn->open());
    }
    const std::string viewOnly = mintToken(secret, Role::Viewer, "alice", 1h, kWall,
                                           parseViewerScope("pc1", "view").value());
    const ConnId v = host.open(2, Kind::Viewer, kT0, secret);
    host.text(v, R"({"type":"handshake","protocol":1,"role":"viewer","token":")" + viewOnly + "\"}",
              kT0);
    ASSERT_TRUE(host.peer(v).conn->open());
    // The registry only lists what the token covers (the ack went out through performRegistry).
    EXPECT_TRUE(contains(host.peer(v).sent, "\"pc1\""));
    EXPECT_FALSE(contains(host.peer(v).sent, "pc2"));
    EXPECT_EQ(host.registry.availableDesktops(v), std::vector<std::string>{"pc1"});

    host.peer(v).sent.clear();
    host.text(v, R"({"type":"subscribe","desktopClientId":"pc2"})", kT0);
    EXPECT_TRUE(contains(host.peer(v).sent, "\"forbidden\""));
    EXPECT_FALSE(host.registry.maySee(v, "pc2"));
    EXPECT_TRUE(host.registry.subscriptionsOf(v).empty());
    host.text(v, R"({"type":"subscribe","desktopClientId":"pc1"})", kT0);
    EXPECT_TRUE(contains(host.peer(v).sent, "subscribed"));

    // View-only: input and set_config are refused before they become a QueueCommand; a
    // keyframe request is fine; a command for pc2 is refused whatever its type.
    host.peer(v).sent.clear();
    host.peer(v).other.clear();
    host.text(
        v,
        R"({"type":"command","desktopClientId":"pc1","command":{"type":"input","event":"key_down","key":"a"}})",
        kT0);
    host.text(
        v, R"({"type":"command","desktopClientId":"pc1","command":{"type":"set_config","fps":5}})",
        kT0);
    host.text(v,
              R"({"type":"command","desktopClientId":"pc2","command":{"type":"request_keyframe"}})",
              kT0);
    host.text(v,
              R"({"type":"command","desktopClientId":"pc1","command":{"type":"request_keyframe"}})",
              kT0);
    ASSERT_EQ(host.peer(v).other.size(), 1u);
    EXPECT_EQ(std::get<relay_action::QueueCommand>(host.peer(v).other[0]).command.desktopClientId,
              "pc1");
    int forbidden = 0;
    for (const auto& t : host.peer(v).sent)
        forbidden += t.find("\"forbidden\"") != std::string::npos;
    EXPECT_EQ(forbidden, 3);
    EXPECT_EQ(host.peer(v).counts[RelayCounter::Forbidden], 4u);  // with the subscribe
    EXPECT_EQ(host.peer(v).closeCode, 0);                         // refusals are no abuse
}

TEST(RelayConnection, InputAndCommandRatesPerViewer) {
    Host host;
    const ConnId v = 2;
    auto c = config(Kind::Viewer);
    c.inputPerSecond = 10;
    c.commandsPerMinute = 3;
    host.peers[v].conn = std::make_unique<RelayConnection>(c, kT0);
    host.text(v, kViewerHello, kT0);
    const std::string input =
        R"({"type":"command","desktopClientId":"pc1","command":{"type":"input","event":"mouse_move","x":1,"y":1}})";
    const std::string keyframe =
        R"({"type":"command","desktopClientId":"pc1","command":{"type":"request_keyframe"}})";
    for (int i = 0; i < 12; ++i) host.text(v, input, kT0);
    EXPECT_EQ(host.peer(v).other.size(), 10u);
    EXPECT_EQ(host.peer(v).counts[RelayCounter::RateLimited], 2u);
    EXPECT_TRUE(contains(host.peer(v).sent, "rate_limited"));
    host.text(v, input, kT0 + 100ms);  // 100 ms refill one event
    EXPECT_EQ(host.peer(v).other.size(), 11u);
    for (int i = 0; i < 4; ++i) host.text(v, keyframe, kT0 + 100ms);
    EXPECT_EQ(host.peer(v).other.size(), 14u);
    EXPECT_EQ(host.peer(v).counts[RelayCounter::RateLimited], 3u);
    EXPECT_EQ(host.peer(v).closeCode, 0);
}

TEST(RelayConnection, ATicketStandsForATokenOnce) {
    const std::string secret = "s3cret";
    TicketBook book;
    TokenClaims claims;
    claims.sub = "alice";
    claims.scope = parseViewerScope("pc1", "view").value();
    ASSERT_TRUE(book.issue("tk1", claims, kWall));
    Host host;
    auto c = config(Kind::Viewer);
    c.authSecret = secret;
    c.redeemTicket = [&](const std::string& t, WallMs now) { return book.redeem(t, now); };
    const std::string hello = R"({"type":"handshake","protocol":1,"role":"viewer","ticket":"tk1"})";
    host.peers[1].conn = std::make_unique<RelayConnection>(c, kT0);
    host.text(1, hello, kT0);
    ASSERT_TRUE(host.peer(1).conn->open());
    EXPECT_EQ(host.peer(1).conn->scope(), claims.scope);
    host.peers[2].conn = std::make_unique<RelayConnection>(c, kT0);
    host.text(2, hello, kT0);  // used already
    EXPECT_EQ(host.peer(2).closeCode, 1008);
    EXPECT_TRUE(contains(host.peer(2).sent, "unauthorized"));
    EXPECT_EQ(host.peer(2).counts[RelayCounter::AuthFailures], 1u);
}
