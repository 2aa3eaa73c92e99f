// HTTP routes of the relay: WebSocket upgrades and the small JSON API (docs/relay.md).
#pragma once

#include <Poco/Net/HTTPRequestHandlerFactory.h>

namespace deskstream::relay {

class RelayImpl;

// A new factory (the HTTPServer takes ownership).
Poco::Net::HTTPRequestHandlerFactory::Ptr makeHandlerFactory(RelayImpl& relay);
// GET /healthz, /readyz and /metrics only (404 for anything else): [relay] health_listen.
Poco::Net::HTTPRequestHandlerFactory::Ptr makeProbeHandlerFactory(RelayImpl& relay);

}  // namespace deskstream::relay
