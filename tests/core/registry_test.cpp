// Registry: pending -> registered only after the store said yes; replaced; removed; failed
// registrations leave nothing; viewers and start/stop_stream.
#include "deskstream/core/registry.hpp"

#include <gtest/gtest.h>

using namespace deskstream::core;

namespace {

const std::string kInstance = "11111111-2222-4333-8444-555555555555";

Registry makeRegistry() {
    RegistryConfig c;
    c.instanceId = kInstance;
    c.heartbeatIntervalMs = 5000;
    c.maxInFlight = 10;
    return Registry(c);
}

Handshake agentHs(const std::string& id, const std::string& name = "PC") {
    Handshake h;
    h.role = Role::Desktop;
    h.clientId = id;
    h.name = name;
    h.hostname = "host";
    MonitorInfo m;
    m.index = 0;
    m.width = 1920;
    m.height = 1080;
    m.primary = true;
    MonitorInfo m1 = m;
    m1.index = 1;
    m1.primary = false;
    h.monitors = {m, m1};
    return h;
}

template <class T>
std::vector<T> all(const Actions& a) {
    std::vector<T> out;
    for (const auto& x : a)
        if (auto* p = std::get_if<T>(&x)) out.push_back(*p);
    return out;
}

template <class M>
std::vector<std::pair<ConnId, M>> sent(const Actions& a) {
    std::vector<std::pair<ConnId, M>> out;
    for (const auto& s : all<SendAction>(a))
        if (auto* m = std::get_if<M>(&s.message)) out.emplace_back(s.conn, *m);
    return out;
}

// Drives a successful registration and returns the confirmation actions.
Actions registerAgent(Registry& r, ConnId conn, const std::string& id, WallMs now = 1000) {
    Actions a = r.onAgentHandshake(conn, agentHs(id), now);
    EXPECT_EQ(all<StoreRegisterAction>(a).size(), 1u);
    return r.onStoreResult(conn, true, "", now + 5);
}

}  // namespace

TEST(Registry, PendingUntilTheStoreConfirms) {
    Registry r = makeRegistry();
    Actions a = r.onAgentHandshake(1, agentHs("office-pc", "Office PC"), 1000);
    ASSERT_EQ(a.size(), 1u);
    auto reg = all<StoreRegisterAction>(a);
    ASSERT_EQ(reg.size(), 1u);
    EXPECT_EQ(reg[0].conn, 1u);
    EXPECT_EQ(reg[0].record.clientId, "office-pc");
    EXPECT_EQ(reg[0].record.name, "Office PC");
    EXPECT_EQ(reg[0].record.instanceId, kInstance);
    EXPECT_EQ(reg[0].record.connectedAtMs, 1000);
    EXPECT_NE(reg[0].record.monitorsJson.find("\"width\":1920"), std::string::npos);
    // No ack, not visible while pending (Invariant 1, docs/architecture.md).
    EXPECT_TRUE(sent<AgentHandshakeAck>(a).empty());
    EXPECT_TRUE(r.isPending(1));
    EXPECT_FALSE(r.findAgent("office-pc"));
    EXPECT_TRUE(r.availableDesktops().empty());

    Actions ok = r.onStoreResult(1, true, "", 1010);
    auto acks = sent<AgentHandshakeAck>(ok);
    ASSERT_EQ(acks.size(), 1u);
    EXPECT_EQ(acks[0].first, 1u);
    EXPECT_EQ(acks[0].second.clientId, "office-pc");
    EXPECT_TRUE(acks[0].second.dbRegistered);
    EXPECT_EQ(acks[0].second.instanceId, kInstance);
    EXPECT_NE(acks[0].second.streamId, 0u);
    EXPECT_EQ(acks[0].second.heartbeatIntervalMs, 5000);
    EXPECT_EQ(acks[0].second.maxInFlight, 10);
    // No viewer yet: the agent is told to stay idle.
    EXPECT_EQ(sent<StopStream>(ok).size(), 1u);
    EXPECT_FALSE(r.isPending(1));
    ASSERT_TRUE(r.findAgent("office-pc"));
    EXPECT_EQ(r.findAgent("office-pc")->conn, 1u);
    EXPECT_EQ(r.availableDesktops(), std::vector<std::string>{"office-pc"});
}

TEST(Registry, FailedRegistrationLeavesNothing) {
    Registry r = makeRegistry();
    r.onAgentHandshake(1, agentHs("office-pc"), 1000);
    Actions a = r.onStoreResult(1, false, "database is locked", 1010);
    auto f = sent<RegistrationFailed>(a);
    ASSERT_EQ(f.size(), 1u);
    EXPECT_EQ(f[0].second.code, ErrorCode::StoreUnavailable);
    EXPECT_EQ(f[0].second.error, "database is locked");
    auto closes = all<CloseAction>(a);
    ASSERT_EQ(closes.size(), 1u);
    EXPECT_EQ(closes[0].code, 1008);
    // registration_failed is sent before the close.
    EXPECT_TRUE(std::holds_alternative<SendAction>(a[0]));
    EXPECT_TRUE(std::holds_alternative<CloseAction>(a[1]));
    EXPECT_FALSE(r.isPending(1));
    EXPECT_FALSE(r.findAgent("office-pc"));
    EXPECT_EQ(r.agentCount(), 0u);
    EXPECT_EQ(r.pendingCount(), 0u);
    // The close that follows changes nothing and asks for no store removal.
    EXPECT_TRUE(r.onAgentClosed(1).empty());
}

TEST(Registry, ProtocolMismatchAndRejections) {
    Registry r = makeRegistry();
    Handshake h = agentHs("office-pc");
    h.protocol = 2;
    Actions a = r.onAgentHandshake(1, h, 1000);
    auto f = sent<RegistrationFailed>(a);
    ASSERT_EQ(f.size(), 1u);
    EXPECT_EQ(f[0].second.code, ErrorCode::ProtocolMismatch);
    EXPECT_EQ(all<CloseAction>(a).at(0).code, 1008);
    EXPECT_EQ(r.pendingCount(), 0u);

    Actions u = r.rejectAgent(2, "office-pc", ErrorCode::Unauthorized, "token rejected: expired");
    EXPECT_EQ(sent<RegistrationFailed>(u).at(0).second.code, ErrorCode::Unauthorized);
    EXPECT_EQ(all<CloseAction>(u).at(0).code, 1008);
    EXPECT_EQ(r.pendingCount(), 0u);

    Handshake bad = agentHs("bad id");
    Actions b = r.onAgentHandshake(3, bad, 1000);
    EXPECT_EQ(sent<RegistrationFailed>(b).at(0).second.code, ErrorCode::BadRequest);
    EXPECT_EQ(sent<RegistrationFailed>(b).at(0).second.clientId, "");  // never echo a bad id
}

TEST(Registry, ReplacementClosesTheOldConnectionWith4000) {
    Registry r = makeRegistry();
    Actions first = registerAgent(r, 1, "office-pc");
    const auto stream1 = sent<AgentHandshakeAck>(first).at(0).second.streamId;
    Actions second = registerAgent(r, 2, "office-pc");
    auto closes = all<CloseAction>(second);
    ASSERT_EQ(closes.size(), 1u);
    EXPECT_EQ(closes[0].conn, 1u);
    EXPECT_EQ(closes[0].code, 4000);
    EXPECT_EQ(closes[0].reason, "replaced");
    // The row is updated, never removed: no unregister for a replacement.
    EXPECT_TRUE(all<StoreUnregisterAction>(second).empty());
    EXPECT_EQ(r.findAgent("office-pc")->conn, 2u);
    EXPECT_NE(r.findAgent("office-pc")->streamId, stream1);
    EXPECT_EQ(r.agentCount(), 1u);
    // The old connection's close, when it comes, does not unregister the new one.
    EXPECT_TRUE(r.onAgentClosed(1).empty());
    EXPECT_EQ(r.findAgent("office-pc")->conn, 2u);
}

TEST(Registry, OlderHandshakeConfirmedLateLoses) {
    Registry r = makeRegistry();
    r.onAgentHandshake(1, agentHs("office-pc"), 1000);  // older
    r.onAgentHandshake(2, agentHs("office-pc"), 1001);  // newer
    r.onStoreResult(2, true, "", 1002);
    Actions late = r.onStoreResult(1, true, "", 1003);
    auto closes = all<CloseAction>(late);
    ASSERT_EQ(closes.size(), 1u);
    EXPECT_EQ(closes[0].conn, 1u);
    EXPECT_EQ(closes[0].code, 4000);
    EXPECT_TRUE(sent<AgentHandshakeAck>(late).empty());
    EXPECT_EQ(r.findAgent("office-pc")->conn, 2u);
}

TEST(Registry, RemovalUnregistersAtOnce) {
    Registry r = makeRegistry();
    registerAgent(r, 1, "office-pc");
    Actions a = r.onAgentClosed(1);
    auto un = all<StoreUnregisterAction>(a);
    ASSERT_EQ(un.size(), 1u);
    EXPECT_EQ(un[0].clientId, "office-pc");
    EXPECT_EQ(un[0].instanceId, kInstance);
    EXPECT_FALSE(r.findAgent("office-pc"));
    EXPECT_EQ(r.agentCount(), 0u);
    EXPECT_TRUE(r.onAgentClosed(1).empty());  // idempotent
}

TEST(Registry, CloseWhilePendingLeavesNoTrace) {
    Registry r = makeRegistry();
    r.onAgentHandshake(1, agentHs("office-pc"), 1000);
    EXPECT_TRUE(r.onAgentClosed(1).empty());
    Actions a = r.onStoreResult(1, true, "", 1010);  // the write landed after all
    auto un = all<StoreUnregisterAction>(a);
    ASSERT_EQ(un.size(), 1u);  // so it is taken back
    EXPECT_EQ(un[0].clientId, "office-pc");
    EXPECT_TRUE(all<SendAction>(a).empty());
    EXPECT_EQ(r.agentCount(), 0u);
    EXPECT_EQ(r.pendingCount(), 0u);

    // Same, but another connection holds the clientId: its row must stay.
    registerAgent(r, 2, "office-pc");
    r.onAgentHandshake(3, agentHs("office-pc"), 2000);
    r.onAgentClosed(3);
    EXPECT_TRUE(all<StoreUnregisterAction>(r.onStoreResult(3, true, "", 2010)).empty());
    EXPECT_EQ(r.findAgent("office-pc")->conn, 2u);
}

TEST(Registry, SecondHandshakeOnTheSameConnectionIsRefused) {
    Registry r = makeRegistry();
    registerAgent(r, 1, "office-pc");
    Actions a = r.onAgentHandshake(1, agentHs("other"), 2000);
    EXPECT_EQ(sent<ErrorMessage>(a).size(), 1u);
    EXPECT_TRUE(all<StoreRegisterAction>(a).empty());
    EXPECT_FALSE(r.findAgent("other"));
}

TEST(Registry, StreamIdsAreUniqueAndNonZero) {
    Registry r = makeRegistry();
    std::set<std::uint32_t> ids;
    for (ConnId c = 1; c <= 50; ++c) {
        auto acks = sent<AgentHandshakeAck>(registerAgent(r, c, "pc" + std::to_string(c)));
        ASSERT_EQ(acks.size(), 1u);
        EXPECT_NE(acks[0].second.streamId, 0u);
        ids.insert(acks[0].second.streamId);
    }
    EXPECT_EQ(ids.size(), 50u);
}

TEST(Registry, ViewersSubscribeAndDriveStartStop) {
    Registry r = makeRegistry();
    registerAgent(r, 1, "office-pc");
    Actions h = r.onViewerHandshake(100);
    auto ack = sent<ViewerHandshakeAck>(h);
    ASSERT_EQ(ack.size(), 1u);
    EXPECT_FALSE(ack[0].second.viewerId.empty());
    ASSERT_EQ(ack[0].second.desktops.size(), 1u);
    EXPECT_EQ(ack[0].second.desktops[0].clientId, "office-pc");
    EXPECT_EQ(r.viewerConn(ack[0].second.viewerId), std::optional<ConnId>(100));
    r.onViewerHandshake(101);

    Actions s1 = r.onSubscribe(100, Subscribe{"office-pc", 0});
    auto sub = sent<Subscribed>(s1);
    ASSERT_EQ(sub.size(), 1u);
    EXPECT_EQ(sub[0].second.streamId, r.findAgent("office-pc")->streamId);
    EXPECT_EQ(sub[0].second.monitors.size(), 2u);
    auto att = all<AttachViewerAction>(s1);
    ASSERT_EQ(att.size(), 1u);
    EXPECT_EQ(att[0].agent, 1u);
    EXPECT_EQ(att[0].viewer, 100u);
    EXPECT_EQ(att[0].monitor, std::optional<int>(0));
    // The viewer is attached before it is told "subscribed" (a frame may follow at once).
    size_t attachAt = s1.size(), answerAt = s1.size();
    for (size_t i = 0; i < s1.size(); ++i) {
        if (std::holds_alternative<AttachViewerAction>(s1[i]) && attachAt == s1.size())
            attachAt = i;
        if (auto* send = std::get_if<SendAction>(&s1[i]))
            if (std::holds_alternative<Subscribed>(send->message) && answerAt == s1.size())
                answerAt = i;
    }
    EXPECT_LT(attachAt, answerAt);
    auto start = sent<StartStream>(s1);
    ASSERT_EQ(start.size(), 1u);  // first subscriber
    EXPECT_EQ(start[0].first, 1u);

    Actions s2 = r.onSubscribe(101, Subscribe{"office-pc", std::nullopt});
    EXPECT_TRUE(sent<StartStream>(s2).empty());
    EXPECT_EQ(r.findAgent("office-pc")->viewers, 2u);
    EXPECT_EQ(r.subscribersOf("office-pc").size(), 2u);

    Actions u1 = r.onUnsubscribe(100, Unsubscribe{"office-pc"});
    EXPECT_EQ(sent<Unsubscribed>(u1).size(), 1u);
    EXPECT_EQ(all<DetachViewerAction>(u1).size(), 1u);
    EXPECT_TRUE(sent<StopStream>(u1).empty());
    Actions c2 = r.onViewerClosed(101);  // last one leaves
    auto stop = sent<StopStream>(c2);
    ASSERT_EQ(stop.size(), 1u);
    EXPECT_EQ(stop[0].first, 1u);
    for (const auto& s : all<SendAction>(c2)) EXPECT_NE(s.conn, 101u);  // nothing to the closed
    EXPECT_EQ(r.viewerCount(), 1u);
    EXPECT_EQ(r.findAgent("office-pc")->viewers, 0u);
}

TEST(Registry, SubscribeErrors) {
    Registry r = makeRegistry();
    EXPECT_EQ(sent<ErrorMessage>(r.onSubscribe(100, Subscribe{"office-pc", {}})).at(0).second.code,
              ErrorCode::BadRequest);  // no handshake
    r.onViewerHandshake(100);
    EXPECT_EQ(sent<ErrorMessage>(r.onSubscribe(100, Subscribe{"office-pc", {}})).at(0).second.code,
              ErrorCode::NotFound);
    r.onAgentHandshake(1, agentHs("office-pc"), 1000);  // pending: still not found
    EXPECT_EQ(sent<ErrorMessage>(r.onSubscribe(100, Subscribe{"office-pc", {}})).at(0).second.code,
              ErrorCode::NotFound);
    r.onStoreResult(1, true, "", 1001);
    EXPECT_EQ(sent<ErrorMessage>(r.onSubscribe(100, Subscribe{"office-pc", 7})).at(0).second.code,
              ErrorCode::NotFound);  // no monitor 7
    EXPECT_TRUE(r.subscribersOf("office-pc").empty());
}

TEST(Registry, SubscriptionsFollowAReplacementAndEndWithTheDesktop) {
    Registry r = makeRegistry();
    registerAgent(r, 1, "office-pc");
    r.onViewerHandshake(100);
    r.onSubscribe(100, Subscribe{"office-pc", {}});
    Actions rep = registerAgent(r, 2, "office-pc");
    auto det = all<DetachViewerAction>(rep);
    auto att = all<AttachViewerAction>(rep);
    ASSERT_EQ(det.size(), 1u);
    EXPECT_EQ(det[0].agent, 1u);
    ASSERT_EQ(att.size(), 1u);
    EXPECT_EQ(att[0].agent, 2u);
    EXPECT_EQ(att[0].viewer, 100u);
    EXPECT_EQ(sent<StartStream>(rep).size(), 1u);  // the new agent streams at once

    Actions gone = r.onAgentClosed(2);
    auto dd = sent<DesktopDisconnected>(gone);
    ASSERT_EQ(dd.size(), 1u);
    EXPECT_EQ(dd[0].first, 100u);
    EXPECT_TRUE(r.subscriptionsOf(100).empty());
}

TEST(PingThrottle, AtMostOncePerInterval) {
    using namespace std::chrono_literals;
    PingThrottle t(10s);
    const TimePoint t0{5000000};
    EXPECT_TRUE(t.shouldRefresh("a", t0));
    EXPECT_FALSE(t.shouldRefresh("a", t0 + 9999ms));
    EXPECT_TRUE(t.shouldRefresh("b", t0 + 1s));
    EXPECT_TRUE(t.shouldRefresh("a", t0 + 10s));
    EXPECT_FALSE(t.shouldRefresh("a", t0 + 15s));
    t.forget("a");
    EXPECT_TRUE(t.shouldRefresh("a", t0 + 15s));
    EXPECT_EQ(t.size(), 2u);
}

TEST(Registry, ResubscribeChangesTheMonitorAndViewerLimitHolds) {
    RegistryConfig c;
    c.instanceId = kInstance;
    c.maxViewersPerDesktop = 2;
    Registry r(c);
    registerAgent(r, 1, "office-pc");
    for (ConnId v = 100; v <= 102; ++v) r.onViewerHandshake(v);
    r.onSubscribe(100, Subscribe{"office-pc", 0});
    Actions again = r.onSubscribe(100, Subscribe{"office-pc", 1});
    EXPECT_TRUE(sent<StartStream>(again).empty());  // not a new subscriber
    EXPECT_EQ(all<AttachViewerAction>(again).at(0).monitor, std::optional<int>(1));
    EXPECT_EQ(r.subscribersOf("office-pc").size(), 1u);
    r.onSubscribe(101, Subscribe{"office-pc", {}});
    Actions full = r.onSubscribe(102, Subscribe{"office-pc", {}});
    EXPECT_EQ(sent<ErrorMessage>(full).at(0).second.code, ErrorCode::RateLimited);
    EXPECT_TRUE(all<AttachViewerAction>(full).empty());
    EXPECT_EQ(r.subscribersOf("office-pc").size(), 2u);
    auto list = r.desktops();
    ASSERT_EQ(list.size(), 1u);
    EXPECT_EQ(list[0].viewers, 2);
    EXPECT_EQ(r.agents().at(0).viewers, 2u);
}
