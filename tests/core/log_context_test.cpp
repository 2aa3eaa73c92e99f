// Structured log fields: per thread, restored by Scope, process fields shared.
#include "deskstream/core/log_context.hpp"

#include <gtest/gtest.h>

#include <thread>

using namespace deskstream::core;

namespace {
std::string field(const logctx::Fields& f, const std::string& key) {
    for (const auto& kv : f)
        if (kv.first == key) return kv.second;
    return "<none>";
}
}  // namespace

TEST(LogContext, ScopeRestoresTheThreadsFields) {
    {
        logctx::Scope scope;
        logctx::set("connection_id", "7");
        logctx::set("client_id", "office-pc");
        logctx::set("client_id", "other-pc");  // replaced, not duplicated
        auto f = logctx::current();
        EXPECT_EQ(field(f, "connection_id"), "7");
        EXPECT_EQ(field(f, "client_id"), "other-pc");
        EXPECT_EQ(f.size(), 2u);
    }
    EXPECT_EQ(field(logctx::current(), "client_id"), "<none>");
}

TEST(LogContext, ThreadFieldsStayOnTheirThreadAndProcessFieldsAreShared) {
    logctx::Scope scope;
    logctx::set("client_id", "mine");
    logctx::setProcess("instance_id", "relay-1");
    std::string seenClient, seenInstance;
    std::thread t([&] {
        auto f = logctx::current();
        seenClient = field(f, "client_id");
        seenInstance = field(f, "instance_id");
    });
    t.join();
    EXPECT_EQ(seenClient, "<none>");
    EXPECT_EQ(seenInstance, "relay-1");
    logctx::setProcess("instance_id", "");
    EXPECT_EQ(field(logctx::current(), "instance_id"), "<none>");
}
