// Command routing (relay) and dedup (agent).
#include "deskstream/core/commands.hpp"

#include <gtest/gtest.h>

#include <array>
#include <memory>

using namespace deskstream::core;

namespace {
Command fps(int v) {
    Command c;
    c.type = CommandType::SetConfig;
    c.config.fps = v;
    return c;
}
}  // namespace

// Deterministic injected ids: the core itself never reads OS randomness.
IdSource countingIds() {
    auto n = std::make_shared<std::uint8_t>(0);
    return [n] {
        std::array<std::uint8_t, 16> b{};
        b[15] = ++*n;
        return uuidFromBytes(b);
    };
}

TEST(CommandRouter, PrepareAssignsAnIdFromTheInjectedSourceAndBuildsThePendingRecord) {
    CommandRouter router({}, countingIds());
    auto r = router.prepare("office-pc", "", fps(15), "v1", 5000, "inst");
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ(r->id.size(), 36u);
    EXPECT_EQ(r->clientId, "office-pc");
    EXPECT_EQ(r->commandType, "set_config");
    EXPECT_EQ(r->commandDataJson, R"({"type":"set_config","fps":15})");
    EXPECT_EQ(r->status, "pending");
    EXPECT_EQ(r->origin, "v1");
    EXPECT_EQ(r->createdAtMs, 5000);
    EXPECT_EQ(r->targetInstanceId, "inst");
    auto again = router.prepare("office-pc", "", fps(15), "v1", 5000);
    EXPECT_NE(again->id, r->id);
    EXPECT_EQ(r->id, "00000000-0000-4000-8000-000000000001");
    EXPECT_EQ(again->id, "00000000-0000-4000-8000-000000000002");
    auto given = router.prepare("office-pc", "my-id", fps(15), "v1", 5000);
    EXPECT_EQ(given->id, "my-id");
}

TEST(CommandRouter, WithoutAnIdSourceACommandWithoutIdIsRefused) {
    CommandRouter router;
    auto r = router.prepare("office-pc", "", fps(15), "v1", 5000);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, ErrorCode::Internal);
    EXPECT_TRUE(router.prepare("office-pc", "given", fps(15), "v1", 5000).ok());
}

TEST(CommandRouter, PrepareRefusesBadInput) {
    CommandRouter router;
    EXPECT_EQ(router.prepare("bad id", "", fps(15), "v", 0).error().field, "desktopClientId");
    EXPECT_EQ(router.prepare("pc", "bad id", fps(15), "v", 0).error().field, "commandId");
    auto r = router.prepare("pc", "", fps(0), "v", 0);  // built by hand, out of range
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, ErrorCode::BadRequest);
    EXPECT_EQ(r.error().field, "command.fps");
}

TEST(CommandRouter, HttpBody) {
    CommandRouter router({}, countingIds());  // some bodies below carry no commandId
    auto r = router.prepareHttp("office-pc",
                                R"({"command":{"type":"request_keyframe"},"commandId":"c-9"})", 7);
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ(r->id, "c-9");
    EXPECT_EQ(r->origin, "http");
    EXPECT_EQ(r->commandType, "request_keyframe");
    EXPECT_FALSE(router.prepareHttp("office-pc", "{", 7).ok());
    EXPECT_FALSE(router.prepareHttp("office-pc", "[]", 7).ok());
    EXPECT_EQ(router.prepareHttp("office-pc", R"({"command":{"type":"nope"}})", 7).error().field,
              "command.type");
    EXPECT_EQ(router.prepareHttp("office-pc", R"({})", 7).error().field, "command");
    EXPECT_EQ(router.prepareHttp("a/b", R"({"command":{"type":"start_stream"}})", 7).error().field,
              "desktopClientId");
    // The body's text is what is checked: 1.5e1 is not the integer 15 (issue 18.10).
    EXPECT_EQ(router.prepareHttp("office-pc", R"({"command":{"type":"set_config","fps":1.5e1}})", 7)
                  .error()
                  .field,
              "command.fps");
    EXPECT_TRUE(
        router.prepareHttp("office-pc", R"( {"command":{"type":"set_config","fps":15}})", 7).ok());
    EXPECT_EQ(router.prepareHttp("office-pc", R"({"type":"ping","timestamp":1})", 7).error().field,
              "type");
}

TEST(CommandRouter, DeliveryDecision) {
    CommandRouter router;
    EXPECT_EQ(router.decideDelivery(true, "", "me"), Delivery::DeliverHere);
    EXPECT_EQ(router.decideDelivery(true, "other", "me"), Delivery::DeliverHere);
    EXPECT_EQ(router.decideDelivery(false, "other", "me"), Delivery::NotifyInstance);
    EXPECT_EQ(router.decideDelivery(false, "me", "me"), Delivery::WaitForAgent);
    EXPECT_EQ(router.decideDelivery(false, "", "me"), Delivery::WaitForAgent);
}

TEST(CommandRouter, DeliveryMessageFromAStoredRecord) {
    CommandRouter router;
    auto rec = router.prepare("office-pc", "c1", fps(20), "v1", 0).value();
    auto m = router.deliveryMessage(rec);
    ASSERT_TRUE(m.ok());
    EXPECT_EQ(m->commandId, "c1");
    EXPECT_EQ(m->command, fps(20));
    EXPECT_TRUE(m->desktopClientId.empty());
    EXPECT_EQ(serialize(m.value()),
              R"({"type":"command","commandId":"c1","command":{"type":"set_config","fps":20}})");
    rec.commandDataJson = "{corrupt";
    auto bad = router.deliveryMessage(rec);
    ASSERT_FALSE(bad.ok());
    EXPECT_EQ(bad.error().code, ErrorCode::Internal);
}

TEST(CommandRouter, ResultGoesBackToTheOriginatingViewerOnce) {
    CommandRouter router;
    auto rec = router.prepare("office-pc", "c1", fps(20), "v1", 1000).value();
    CommandQueued q = router.onStored(rec, 100, 1000);
    EXPECT_EQ(q.commandId, "c1");
    EXPECT_EQ(q.status, "pending");
    auto http = router.prepare("office-pc", "c2", fps(20), "http", 1000).value();
    router.onStored(http, 0, 1000);  // nobody to answer
    EXPECT_EQ(router.routeCount(), 1u);

    CommandResult res{"c1", CommandStatus::Failed, "no input device", ""};
    auto route = router.onResult(res, "office-pc");
    ASSERT_TRUE(route);
    EXPECT_EQ(route->viewer, 100u);
    EXPECT_EQ(route->message.desktopClientId, "office-pc");
    EXPECT_EQ(route->message.error, "no input device");
    EXPECT_FALSE(router.onResult(res, "office-pc"));  // once
    EXPECT_FALSE(router.onResult(CommandResult{"c2", CommandStatus::Done, "", ""}, "office-pc"));
    EXPECT_EQ(CommandRouter::resultJson(res), R"({"status":"failed","error":"no input device"})");
}

TEST(CommandRouter, RoutesAreBoundedAndExpire) {
    CommandPolicy p;
    p.maxRoutes = 3;
    p.ttlMs = 1000;
    CommandRouter router(p);
    for (int i = 0; i < 5; ++i) {
        auto rec = router.prepare("pc", "c" + std::to_string(i), fps(5), "v", i).value();
        router.onStored(rec, 10 + i, i);
    }
    EXPECT_EQ(router.routeCount(), 3u);
    EXPECT_FALSE(router.onResult(CommandResult{"c0", CommandStatus::Done, "", ""}, "pc"));
    EXPECT_EQ(router.onTick(1002), 1u);  // c2 (since 2) is older than 1000 ms at 1002
    EXPECT_EQ(router.routeCount(), 2u);
    router.forgetViewer(13);
    EXPECT_EQ(router.routeCount(), 1u);
    EXPECT_EQ(router.onTick(5000), 1u);
    EXPECT_EQ(router.routeCount(), 0u);
}

TEST(CommandRouter, ExpiryPolicy) {
    CommandPolicy p;
    p.ttlMs = 60000;
    p.maxAttempts = 3;
    CommandRouter router(p);
    CommandRecord r;
    r.createdAtMs = 1000;
    r.status = "pending";
    EXPECT_FALSE(router.shouldExpire(r, 60999));
    EXPECT_TRUE(router.shouldExpire(r, 61000));
    r.status = "delivered";
    r.attempts = 3;
    EXPECT_FALSE(router.shouldExpire(r, 2000));
    r.attempts = 4;
    EXPECT_TRUE(router.shouldExpire(r, 2000));
    r.status = "done";
    EXPECT_FALSE(router.shouldExpire(r, 999999));
    EXPECT_EQ(router.expiryCutoff(100000), 40000);
}

TEST(CommandDedup, ExecutesEachIdOnceWithBoundedMemory) {
    CommandDedup d(3);
    EXPECT_TRUE(d.markExecuted("a"));
    EXPECT_FALSE(d.markExecuted("a"));
    EXPECT_TRUE(d.markExecuted("b"));
    EXPECT_TRUE(d.markExecuted("c"));
    EXPECT_FALSE(d.markExecuted("a"));  // "a" becomes the most recent again
    EXPECT_TRUE(d.markExecuted("d"));   // evicts "b", the least recent
    EXPECT_EQ(d.size(), 3u);
    EXPECT_TRUE(d.seen("a"));
    EXPECT_FALSE(d.seen("b"));
    EXPECT_TRUE(d.markExecuted("b"));
    for (int i = 0; i < 10000; ++i) d.markExecuted("x" + std::to_string(i));
    EXPECT_EQ(d.size(), 3u);
}

// Issue 18 point 4: a reused id is the same command or a conflict.
TEST(CommandRouter, ReusedIdIsAnIdempotentRetryOnlyForTheSameCommand) {
    CommandRouter router;
    Command c;
    c.type = CommandType::RequestKeyframe;
    auto first = router.prepare("pc1", "X1", c, "v1", 1000);
    ASSERT_TRUE(first.ok());
    auto retry = router.prepare("pc1", "X1", c, "v2", 2000);
    EXPECT_FALSE(CommandRouter::conflictWith(retry.value(), first.value()));
    auto otherDesktop = router.prepare("other-pc", "X1", c, "v2", 2000);
    auto e = CommandRouter::conflictWith(otherDesktop.value(), first.value());
    ASSERT_TRUE(e);
    EXPECT_EQ(e->code, ErrorCode::Conflict);
    EXPECT_EQ(std::string(toString(e->code)), "conflict");
    Command stop;
    stop.type = CommandType::StopStream;
    EXPECT_TRUE(CommandRouter::conflictWith(router.prepare("pc1", "X1", stop, "v1", 1000).value(),
                                            first.value()));
}

TEST(CommandRouter, ExpiryResultNamesTheRuleThatEndedTheCommand) {
    CommandPolicy p;
    p.ttlMs = 1000;
    p.maxAttempts = 5;
    CommandRouter router(p);
    CommandRecord r;
    r.createdAtMs = 10000;
    r.status = "delivered";
    r.attempts = 6;
    EXPECT_TRUE(router.shouldExpire(r, 10500));
    EXPECT_EQ(router.expiryResultJson(r, 10500),
              R"({"status":"failed","error":"no result after 5 deliveries"})");
    r.attempts = 1;
    EXPECT_TRUE(router.shouldExpire(r, 11000));
    EXPECT_EQ(router.expiryResultJson(r, 11000),
              R"({"status":"failed","error":"not completed within the command TTL"})");
    EXPECT_FALSE(router.shouldExpire(r, 10999));
}
