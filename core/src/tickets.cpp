// deskstream core: one-use viewer tickets (see tickets.hpp).
#include "deskstream/core/tickets.hpp"

namespace deskstream::core {

TicketBook::TicketBook(Duration ttl, std::size_t capacity) : ttl_(ttl), capacity_(capacity) {}

void TicketBook::dropExpired(WallMs nowMs) {
    for (auto it = tickets_.begin(); it != tickets_.end();)
        it = nowMs >= it->second.expiresMs ? tickets_.erase(it) : std::next(it);
}

bool TicketBook::issue(const std::string& id, const TokenClaims& claims, WallMs nowMs) {
    if (!isValidId(id)) return false;
    if (tickets_.size() >= capacity_) dropExpired(nowMs);
    if (tickets_.size() >= capacity_ || tickets_.count(id)) return false;
    tickets_[id] = Ticket{claims, nowMs + toMs(ttl_)};
    return true;
}

Result<TokenClaims> TicketBook::redeem(const std::string& id, WallMs nowMs) {
    auto it = tickets_.find(id);
    if (it == tickets_.end())
        return makeError(ErrorCode::Unauthorized, "ticket", "ticket rejected: unknown or used");
    Ticket t = std::move(it->second);
    tickets_.erase(it);  // one use, in time or not
    if (nowMs >= t.expiresMs)
        return makeError(ErrorCode::Unauthorized, "ticket", "ticket rejected: expired");
    return t.claims;
}

}  // namespace deskstream::core
