// The relay -> viewer desktop_connected notice (docs/protocol.md): every connected viewer hears
// when a desktop registers or re-registers, so a viewer resumes without polling; and /readyz
// tells the relay's start time (the dashboard's uptime).
#include "relay_fixture.hpp"

#include <Poco/JSON/Array.h>

namespace ds_itest {
namespace {

TEST_F(RelayTest, EveryViewerHearsWhenADesktopRegistersAndRegistersAgain) {
    auto watching = connectViewer();
    auto idle = connectViewer();
    auto agent = connectAgent("notice-pc");
    for (WsClient* v : {watching.get(), idle.get()}) {
        Json n = v->waitFor("desktop_connected");
        ASSERT_TRUE(n) << "a viewer got no desktop_connected";
        EXPECT_EQ(str(n, "desktopClientId"), "notice-pc");
        Json d = n->getObject("desktop");
        ASSERT_TRUE(d);
        EXPECT_EQ(str(d, "clientId"), "notice-pc");
        EXPECT_EQ(str(d, "name"), "Test PC");
        EXPECT_EQ(str(d, "hostname"), "testhost");
        ASSERT_TRUE(d->getArray("monitors"));
        EXPECT_EQ(d->getArray("monitors")->size(), 1u);
        EXPECT_EQ(d->getValue<int>("viewers"), 0);
    }
    // The watching viewer subscribes; the agent goes away and comes back.
    watching->send(R"({"type":"subscribe","desktopClientId":"notice-pc"})");
    ASSERT_TRUE(watching->waitFor("subscribed"));
    agent.reset();  // closes the socket: the relay unregisters the desktop
    ASSERT_TRUE(watching->waitFor("desktop_disconnected"));
    agent = connectAgent("notice-pc");
    Json again = watching->waitFor("desktop_connected");
    ASSERT_TRUE(again) << "no notice on re-registration";
    EXPECT_EQ(str(again, "desktopClientId"), "notice-pc");
    ASSERT_TRUE(idle->waitFor("desktop_connected")) << "viewers that watch nothing hear it too";
    // On the notice the viewer subscribes again and gets frames (here: the subscription is accepted).
    watching->send(R"({"type":"subscribe","desktopClientId":"notice-pc"})");
    ASSERT_TRUE(watching->waitFor("subscribed"));
}

TEST_F(RelayTest, ReadyzTellsTheStartTimeAndTheServerTime) {
    HttpResult ready = httpRequest(port(), "GET", "/readyz");
    ASSERT_EQ(ready.status, 200) << ready.body;
    Json j = parseJson(ready.body);
    ASSERT_TRUE(j);
    const auto startedAt = j->getValue<int64_t>("startedAt");
    const auto serverTime = j->getValue<int64_t>("serverTime");
    EXPECT_GT(startedAt, 1600000000000) << "milliseconds since the epoch";
    EXPECT_GE(serverTime, startedAt);
    EXPECT_LT(serverTime - startedAt, 600000) << "the relay of this test started moments ago";
}

}  // namespace
}  // namespace ds_itest
