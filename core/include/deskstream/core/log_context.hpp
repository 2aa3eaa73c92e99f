// deskstream core: structured log fields (client_id, connection_id, instance_id...) that a log
// formatter adds to every line, so a line needs no id spelled into its text to be searchable.
// Thread fields belong to the calling thread (a relay connection's thread, the agent's session
// thread); process fields (the relay's instance id) to every thread. See docs/operations.md.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace deskstream::core::logctx {

using Fields = std::vector<std::pair<std::string, std::string>>;

/// Sets `key` on the calling thread (replacing its previous value) until the enclosing Scope ends.
void set(const std::string& key, std::string value);
/// Sets `key` for every thread of the process; an empty value removes it.
void setProcess(const std::string& key, std::string value);
/// The calling thread's fields, then the process fields it does not override.
Fields current();

/// Saves the calling thread's fields and restores them when it ends: pool threads are reused,
/// so a connection's ids must not leak into the next one.
class Scope {
public:
    Scope();
    ~Scope();
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;

private:
    Fields saved_;
};

}  // namespace deskstream::core::logctx
