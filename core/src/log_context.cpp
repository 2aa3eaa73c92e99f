// Thread and process log fields; see log_context.hpp.
#include "deskstream/core/log_context.hpp"

#include <algorithm>
#include <mutex>

namespace deskstream::core::logctx {

namespace {

thread_local Fields tFields;
std::mutex pMutex;
Fields pFields;

void put(Fields& f, const std::string& key, std::string value) {
    auto it = std::find_if(f.begin(), f.end(), [&](const auto& kv) { return kv.first == key; });
    if (it != f.end()) {
        if (value.empty())
            f.erase(it);
        else
            it->second = std::move(value);
    } else if (!value.empty()) {
        f.emplace_back(key, std::move(value));
    }
}

}  // namespace

void set(const std::string& key, std::string value) { put(tFields, key, std::move(value)); }

void setProcess(const std::string& key, std::string value) {
    std::lock_guard<std::mutex> lock(pMutex);
    put(pFields, key, std::move(value));
}

Fields current() {
    Fields out = tFields;
    std::lock_guard<std::mutex> lock(pMutex);
    for (const auto& kv : pFields) {
        if (std::none_of(out.begin(), out.end(),
                         [&](const auto& o) { return o.first == kv.first; }))
            out.push_back(kv);
    }
    return out;
}

Scope::Scope() : saved_(tFields) {}
Scope::~Scope() { tFields = std::move(saved_); }

}  // namespace deskstream::core::logctx
