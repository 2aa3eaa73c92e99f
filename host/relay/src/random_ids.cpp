// Random ids for the relay: version 4 UUIDs from the OS CSPRNG.
#include "random_ids.hpp"

#include <Poco/UUID.h>
#include <Poco/UUIDGenerator.h>

namespace deskstream::relay {

std::string randomUuid() {
    // createRandom(): version 4 from Poco's RandomInputStream (the OS CSPRNG); thread-safe.
    return Poco::UUIDGenerator::defaultGenerator().createRandom().toString();
}

}  // namespace deskstream::relay
