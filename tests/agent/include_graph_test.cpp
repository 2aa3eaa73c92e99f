// The agent's parts keep one-way dependencies (docs/architecture.md, "The agent"): read the
// `#include "..."` lines of host/agent/src and check that the graph has no cycle and that no
// part includes another part — they meet only through the session hub and ports.hpp.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <regex>
#include <set>
#include <string>

namespace fs = std::filesystem;

namespace {

// file stem -> stems it includes (local includes of host/agent/src only; .hpp and .cpp merged)
std::map<std::string, std::set<std::string>> includeGraph() {
    const fs::path dir = fs::path(DS_SOURCE_DIR) / "host" / "agent" / "src";
    std::map<std::string, std::set<std::string>> graph;
    const std::regex include(R"re(^\s*#\s*include\s+"([A-Za-z0-9_]+)\.hpp")re");
    for (const auto& entry : fs::directory_iterator(dir)) {
        const std::string stem = entry.path().stem().string();
        graph[stem];
        std::ifstream in(entry.path());
        std::string line;
        std::smatch m;
        while (std::getline(in, line))
            if (std::regex_search(line, m, include) && fs::exists(dir / (m[1].str() + ".hpp")) &&
                m[1].str() != stem)
                graph[stem].insert(m[1].str());
    }
    return graph;
}

}  // namespace

TEST(AgentIncludes, TheGraphOfTheAgentsFilesHasNoCycle) {
    auto graph = includeGraph();
    ASSERT_GE(graph.size(), 10u) << "host/agent/src not found under " << DS_SOURCE_DIR;
    std::map<std::string, int> state;  // 0 new, 1 on the path, 2 done
    std::vector<std::string> path;
    std::function<void(const std::string&)> visit = [&](const std::string& f) {
        state[f] = 1;
        path.push_back(f);
        for (const auto& to : graph[f]) {
            if (state[to] == 1) {
                std::string cycle;
                for (const auto& p : path) cycle += p + " -> ";
                ADD_FAILURE() << "include cycle: " << cycle << to;
            } else if (state[to] == 0) {
                visit(to);
            }
        }
        path.pop_back();
        state[f] = 2;
    };
    for (const auto& [file, deps] : graph)
        if (state[file] == 0) visit(file);
}

TEST(AgentIncludes, NoPartIncludesAnotherPart) {
    const std::set<std::string> parts = {"relay_link", "capture_pipeline", "encoder_stage",
                                         "command_executor"};
    auto graph = includeGraph();
    for (const auto& part : parts) {
        ASSERT_TRUE(graph.count(part)) << part;
        for (const auto& dep : graph[part])
            EXPECT_EQ(parts.count(dep), 0u) << part << " includes " << dep
                                            << ": parts talk through ports.hpp and the session hub";
    }
    // Only the runtime wires them together.
    for (const auto& part : parts) EXPECT_TRUE(graph["agent"].count(part)) << part;
}
