// Random ids for the relay (instance ids, command ids without one): the OS randomness that
// core must not read itself, injected into core as an IdSource.
#pragma once

#include <string>

namespace deskstream::relay {

// A fresh random version 4 UUID (the OS CSPRNG through Poco); thread-safe.
std::string randomUuid();

}  // namespace deskstream::relay
