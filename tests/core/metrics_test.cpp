// The metrics registry against the rules of the Prometheus text format 0.0.4.
#include "deskstream/core/agent_metrics.hpp"
#include "deskstream/core/metrics.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

using namespace deskstream::core::metrics;

namespace {

std::vector<std::string> lines(const std::string& text) {
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string l; std::getline(in, l);) out.push_back(l);
    return out;
}

bool has(const std::string& text, const std::string& line) {
    for (const auto& l : lines(text))
        if (l == line) return true;
    return false;
}

// Checks the structural rules of the format on a whole exposition: every line is a HELP, a TYPE
// or a sample; HELP and TYPE come once per family, before its samples; the samples of a family
// are contiguous; the text ends with a newline.
void expectWellFormed(const std::string& text) {
    ASSERT_FALSE(text.empty());
    EXPECT_EQ(text.back(), '\n');
    static const std::regex help(R"(# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) .+)");
    static const std::regex type(R"(# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram))");
    static const std::regex sample(
        R"(([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\\\|\\"|\\n)*")(,[a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\\\|\\"|\\n)*")*\})? (-?[0-9.e+-]+|\+Inf|-Inf|NaN))");
    std::set<std::string> seenHelp, seenType, closed;
    std::string current, currentType;
    for (const auto& l : lines(text)) {
        std::smatch m;
        if (std::regex_match(l, m, help)) {
            EXPECT_TRUE(seenHelp.insert(m[1]).second) << "second HELP for " << m[1];
            if (!current.empty()) closed.insert(current);
            current = m[1];
        } else if (std::regex_match(l, m, type)) {
            EXPECT_EQ(m[1], current) << "TYPE must follow its HELP: " << l;
            EXPECT_TRUE(seenType.insert(m[1]).second) << "second TYPE for " << m[1];
            currentType = m[2];
        } else if (std::regex_match(l, m, sample)) {
            std::string name = m[1];
            std::string family = name;
            if (currentType == "histogram") {
                for (const char* s : {"_bucket", "_sum", "_count"}) {
                    const std::string suffix = s;
                    if (name.size() > suffix.size() &&
                        name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0)
                        family = name.substr(0, name.size() - suffix.size());
                }
            }
            EXPECT_EQ(family, current) << "sample outside its family: " << l;
            EXPECT_EQ(closed.count(family), 0u);
        } else {
            ADD_FAILURE() << "not a valid exposition line: [" << l << "]";
        }
    }
}

}  // namespace

TEST(Metrics, CounterRendersHelpTypeAndValue) {
    Registry r;
    auto& c = r.counter("deskstream_test_events_total", "Events seen.");
    c.get().inc();
    c.get().inc(41);
    const std::string text = r.render();
    EXPECT_EQ(text,
              "# HELP deskstream_test_events_total Events seen.\n"
              "# TYPE deskstream_test_events_total counter\n"
              "deskstream_test_events_total 42\n");
    expectWellFormed(text);
}

TEST(Metrics, LabelValuesAreEscaped) {
    Registry r;
    auto& c = r.counter("x_total", "Help with a \\ backslash\nand a newline.", {"path"});
    c.labels({"a\"b\\c\nd"}).inc();
    const std::string text = r.render();
    EXPECT_TRUE(has(text, "# HELP x_total Help with a \\\\ backslash\\nand a newline.")) << text;
    EXPECT_TRUE(has(text, "x_total{path=\"a\\\"b\\\\c\\nd\"} 1")) << text;
    expectWellFormed(text);
}

TEST(Metrics, LabelledChildrenAreDistinctAndStable) {
    Registry r;
    auto& f = r.counter("y_total", "Y.", {"role", "outcome"});
    Counter& a = f.labels({"agent", "ok"});
    Counter& b = f.labels({"viewer", "ok"});
    EXPECT_NE(&a, &b);
    EXPECT_EQ(&a, &f.labels({"agent", "ok"}));
    a.inc(2);
    b.inc(3);
    const std::string text = r.render();
    EXPECT_TRUE(has(text, "y_total{role=\"agent\",outcome=\"ok\"} 2")) << text;
    EXPECT_TRUE(has(text, "y_total{role=\"viewer\",outcome=\"ok\"} 3")) << text;
    EXPECT_THROW(f.labels({"agent"}), std::invalid_argument);
}

TEST(Metrics, HistogramBucketsAreCumulativeWithInfSumAndCount) {
    Registry r;
    auto& h = r.histogram("lat_seconds", "Latency.", {0.1, 0.5, 1}, {"role"});
    Histogram& x = h.labels({"viewer"});
    x.observe(0.05);
    x.observe(0.1);  // on the bound: le="0.1" (upper bounds are inclusive)
    x.observe(0.3);
    x.observe(2.0);  // above every bound: only +Inf
    const std::string text = r.render();
    EXPECT_TRUE(has(text, "# TYPE lat_seconds histogram"));
    EXPECT_TRUE(has(text, "lat_seconds_bucket{role=\"viewer\",le=\"0.1\"} 2")) << text;
    EXPECT_TRUE(has(text, "lat_seconds_bucket{role=\"viewer\",le=\"0.5\"} 3")) << text;
    EXPECT_TRUE(has(text, "lat_seconds_bucket{role=\"viewer\",le=\"1\"} 3")) << text;
    EXPECT_TRUE(has(text, "lat_seconds_bucket{role=\"viewer\",le=\"+Inf\"} 4")) << text;
    EXPECT_TRUE(has(text, "lat_seconds_count{role=\"viewer\"} 4")) << text;
    EXPECT_TRUE(has(text, "lat_seconds_sum{role=\"viewer\"} 2.45")) << text;
    expectWellFormed(text);
}

TEST(Metrics, HistogramWithoutLabelsHasOnlyLe) {
    Registry r;
    r.histogram("d_seconds", "D.", {1}).get().observe(0.5);
    const std::string text = r.render();
    EXPECT_TRUE(has(text, "d_seconds_bucket{le=\"1\"} 1")) << text;
    EXPECT_TRUE(has(text, "d_seconds_bucket{le=\"+Inf\"} 1")) << text;
    EXPECT_TRUE(has(text, "d_seconds_sum 0.5")) << text;
}

TEST(Metrics, FamiliesWithoutLabelsShowZeroBeforeTheFirstUpdate) {
    Registry r;
    r.counter("fresh_total", "F.");
    r.gauge("fresh_gauge", "G.");
    r.histogram("fresh_seconds", "H.", {1});
    r.counter("labelled_total", "L.", {"kind"});
    const std::string text = r.render();
    EXPECT_TRUE(has(text, "fresh_total 0")) << text;
    EXPECT_TRUE(has(text, "fresh_gauge 0")) << text;
    EXPECT_TRUE(has(text, "fresh_seconds_count 0")) << text;
    EXPECT_EQ(text.find("labelled_total{"), std::string::npos)
        << "no child until a label set is used";
    expectWellFormed(text);
}

TEST(Metrics, GaugeGoesUpAndDown) {
    Registry r;
    Gauge& g = r.gauge("conns", "Open connections.", {"role"}).labels({"agent"});
    g.inc();
    g.inc();
    g.dec();
    EXPECT_TRUE(has(r.render(), "conns{role=\"agent\"} 1"));
    g.set(-2.5);
    EXPECT_TRUE(has(r.render(), "conns{role=\"agent\"} -2.5"));
}

TEST(Metrics, NamesAreChecked) {
    Registry r;
    EXPECT_THROW(r.counter("no_suffix", "H."), std::invalid_argument);
    EXPECT_THROW(r.gauge("g_total", "H."), std::invalid_argument);
    EXPECT_THROW(r.gauge("1abc", "H."), std::invalid_argument);
    EXPECT_THROW(r.gauge("a-b", "H."), std::invalid_argument);
    EXPECT_THROW(r.gauge("x_count", "H."), std::invalid_argument);
    EXPECT_THROW(r.gauge("ok", ""), std::invalid_argument);
    EXPECT_THROW(r.gauge("ok", "H.", {"__reserved"}), std::invalid_argument);
    EXPECT_THROW(r.gauge("ok", "H.", {"a", "a"}), std::invalid_argument);
    EXPECT_THROW(r.gauge("ok", "H.", {"bad-label"}), std::invalid_argument);
    EXPECT_THROW(r.histogram("h", "H.", {1}, {"le"}), std::invalid_argument);
    EXPECT_THROW(r.histogram("h", "H.", {}), std::invalid_argument);
    EXPECT_THROW(r.histogram("h", "H.", {2, 1}), std::invalid_argument);
    EXPECT_THROW(r.histogram("h", "H.", {1, INFINITY}), std::invalid_argument);
    EXPECT_FALSE(r.contains("h"));
}

TEST(Metrics, SameFamilyIsSharedAndClashesThrow) {
    Registry r;
    auto& a = r.counter("shared_total", "S.", {"role"});
    EXPECT_EQ(&a, &r.counter("shared_total", "S.", {"role"}));
    EXPECT_THROW(r.counter("shared_total", "S.", {"other"}), std::invalid_argument);
    EXPECT_THROW(r.gauge("shared_total", "S."), std::invalid_argument);
    r.histogram("lat", "L.", {1});
    EXPECT_THROW(r.histogram("lat", "L.", {2}), std::invalid_argument);
    EXPECT_THROW(r.gauge("lat_bucket", "L."), std::invalid_argument);
    r.gauge("q_count_x", "fine: not a reserved suffix");
}

TEST(Metrics, CallbackFamiliesRenderAtScrapeTimeAndCanBeRemoved) {
    Registry r;
    double rss = 100;
    r.callback("proc_bytes", "Bytes.", Type::Gauge, {}, [&](const Emit& emit) { emit({}, rss); });
    r.callback("ev_total", "Events.", Type::Counter, {"event"}, [&](const Emit& emit) {
        emit({"a"}, 1);
        emit({"b"}, 2);
        emit({"too", "many"}, 3);  // skipped: wrong number of label values
    });
    rss = 4096;
    std::string text = r.render();
    EXPECT_TRUE(has(text, "proc_bytes 4096")) << text;
    EXPECT_TRUE(has(text, "ev_total{event=\"b\"} 2")) << text;
    EXPECT_EQ(text.find("many"), std::string::npos);
    expectWellFormed(text);
    r.remove("proc_bytes");
    EXPECT_EQ(r.render().find("proc_bytes"), std::string::npos);
    EXPECT_THROW(r.callback("h2", "H.", Type::Histogram, {}, [](const Emit&) {}),
                 std::invalid_argument);
}

TEST(Metrics, ValuesFormatAsShortestRoundTrip) {
    EXPECT_EQ(formatValue(0.1), "0.1");
    EXPECT_EQ(formatValue(1), "1");
    EXPECT_EQ(formatValue(INFINITY), "+Inf");
    EXPECT_EQ(formatValue(-INFINITY), "-Inf");
    EXPECT_EQ(formatValue(NAN), "NaN");
    EXPECT_EQ(std::stod(formatValue(0.005 * 3)), 0.005 * 3);
}

TEST(Metrics, ExponentialBuckets) {
    EXPECT_EQ(exponentialBuckets(0.001, 2, 4), (std::vector<double>{0.001, 0.002, 0.004, 0.008}));
    EXPECT_THROW(exponentialBuckets(0, 2, 3), std::invalid_argument);
}

// Updates from several threads lose nothing (they are atomic, with no lock).
TEST(Metrics, ConcurrentUpdatesAreExact) {
    Registry r;
    Counter& c = r.counter("c_total", "C.").get();
    Histogram& h = r.histogram("h", "H.", {0.5, 1.5}).get();
    Gauge& g = r.gauge("g", "G.").get();
    std::vector<std::thread> threads;
    constexpr int kThreads = 4, kEach = 20000;
    for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([&] {
            for (int i = 0; i < kEach; ++i) {
                c.inc();
                h.observe(1.0);
                g.inc();
            }
        });
    }
    for (auto& t : threads) t.join();
    EXPECT_EQ(c.value(), uint64_t(kThreads) * kEach);
    const auto s = h.snapshot();
    EXPECT_EQ(s.count, uint64_t(kThreads) * kEach);
    EXPECT_EQ(s.cumulative[0], 0u);
    EXPECT_EQ(s.cumulative[1], uint64_t(kThreads) * kEach);
    EXPECT_DOUBLE_EQ(s.sum, double(kThreads) * kEach);
    EXPECT_DOUBLE_EQ(g.value(), double(kThreads) * kEach);
}

// The agent's metric set: well-formed, updates land in the right series, and it shares a
// registry with the relay's families (role all) without clashing.
TEST(AgentMetrics, RendersEveryFamilyAndMovesWithUpdates) {
    auto registry = std::make_shared<Registry>();
    registry->counter("deskstream_relay_frames_forwarded_total",
                      "A relay family in the same registry.");
    deskstream::core::AgentMetrics m(registry);
    m.captured(deskstream::core::FrameCodec::Jpeg, 0.004);
    m.encoded(deskstream::core::FrameCodec::Jpeg, 0.006, 300000);
    m.quality(75);
    m.inFlight(2);
    m.windowDrop();
    m.reconnect();
    m.breaker(deskstream::core::BreakerState::Open);
    const std::string text = m.render();
    expectWellFormed(text);
    EXPECT_TRUE(has(text, "deskstream_agent_capture_duration_seconds_count{codec=\"jpeg\"} 1"))
        << text;
    EXPECT_TRUE(has(text, "deskstream_agent_capture_duration_seconds_count{codec=\"webp\"} 0"))
        << text;
    EXPECT_TRUE(has(text, "deskstream_agent_encode_duration_seconds_sum{codec=\"jpeg\"} 0.006"))
        << text;
    EXPECT_TRUE(
        has(text, "deskstream_agent_encoded_frame_bytes_bucket{codec=\"jpeg\",le=\"262144\"} 0"))
        << text;
    EXPECT_TRUE(
        has(text, "deskstream_agent_encoded_frame_bytes_bucket{codec=\"jpeg\",le=\"1048576\"} 1"))
        << text;
    EXPECT_TRUE(has(text, "deskstream_agent_quality 75")) << text;
    EXPECT_TRUE(has(text, "deskstream_agent_frames_in_flight 2")) << text;
    EXPECT_TRUE(has(text, "deskstream_agent_window_drops_total 1")) << text;
    EXPECT_TRUE(has(text, "deskstream_agent_reconnects_total 1")) << text;
    EXPECT_TRUE(has(text, "deskstream_agent_circuit_breaker{state=\"open\"} 1")) << text;
    EXPECT_TRUE(has(text, "deskstream_agent_circuit_breaker{state=\"closed\"} 0")) << text;
    EXPECT_TRUE(has(text, "deskstream_relay_frames_forwarded_total 0")) << text;
}
