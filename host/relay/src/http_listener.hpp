// The relay's HTTP listeners: Poco's HTTP/1.1 server with a first-request deadline, so a
// connection that never sends a request holds a pool thread at most [relay]
// http_idle_timeout_ms after it was accepted (docs/relay.md, "Probes and idle connections").
#pragma once

#include <Poco/Net/HTTPRequestHandlerFactory.h>
#include <Poco/Net/HTTPServerParams.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/Net/TCPServer.h>
#include <Poco/ThreadPool.h>

#include <chrono>
#include <memory>

namespace deskstream::relay {

// Poco::Net::HTTPServer serves a connection with HTTPServerConnection, which waits up to the
// params' timeout for the first request. This server does the same, except that the first
// byte must arrive within `firstRequestWithin` of the accept (measured from the accept, not
// from when a pool thread takes the connection, so a queue full of idle connections drains
// in one deadline, not one per thread); then HTTPServerConnection serves it as usual.
class HttpListener : public Poco::Net::TCPServer {
public:
    HttpListener(Poco::Net::HTTPRequestHandlerFactory::Ptr factory, Poco::ThreadPool& pool,
                 const Poco::Net::ServerSocket& socket, Poco::Net::HTTPServerParams::Ptr params,
                 std::chrono::milliseconds firstRequestWithin);
    ~HttpListener() override;

    // As HTTPServer::stopAll(true): stop accepting and end every connection, those being
    // served and those still waiting for their first request.
    void stopAll();

    struct Shared;  // accept times and the stop flag, shared with the connections

private:
    HttpListener(std::shared_ptr<Shared> shared, Poco::ThreadPool& pool,
                 const Poco::Net::ServerSocket& socket, Poco::Net::HTTPServerParams::Ptr params);

    std::shared_ptr<Shared> shared_;
};

}  // namespace deskstream::relay
