// deskstream core: one-use tickets that stand for a viewer token for a short time (sans-IO).
//
// POST /api/tickets with a token in the Authorization header issues a ticket (random id chosen by
// the host) carrying that token's sub and scope; a viewer's handshake (or its /ws/viewer URL
// query) presents it instead of the token. A ticket is valid for `ttl` (30 s) and works once: it
// is removed when redeemed, whether the redemption is in time or not. So a page never needs a
// long-lived token in a URL (docs/security.md). At most `capacity` tickets are outstanding;
// expired ones are dropped first. Not thread-safe: the relay holds a lock around it.
#pragma once

#include "deskstream/core/auth.hpp"
#include "deskstream/core/types.hpp"

#include <cstddef>
#include <map>
#include <string>

namespace deskstream::core {

class TicketBook {
public:
    explicit TicketBook(Duration ttl = std::chrono::seconds(30), std::size_t capacity = 10000);
    /// Stores `id` (random, from the host) for `claims`; false when full or the id is taken.
    bool issue(const std::string& id, const TokenClaims& claims, WallMs nowMs);
    /// The claims of `id` once; unauthorized when unknown, used already, or expired.
    Result<TokenClaims> redeem(const std::string& id, WallMs nowMs);
    std::size_t outstanding() const { return tickets_.size(); }
    Duration ttl() const { return ttl_; }

private:
    struct Ticket {
        TokenClaims claims;
        WallMs expiresMs = 0;
    };
    void dropExpired(WallMs nowMs);

    Duration ttl_;
    std::size_t capacity_;
    std::map<std::string, Ticket> tickets_;
};

}  // namespace deskstream::core
