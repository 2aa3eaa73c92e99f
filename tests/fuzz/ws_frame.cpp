// Fuzz target ws_frame: a client's byte stream into the relay's WebSocket frame parser
// (ws::Parser::feed, core/src/ws_codec.cpp). The first two input bytes choose the limits and
// how the rest is cut into reads; the rest is the stream. Promises checked (docs/relay.md,
// "WebSocket conformance"):
// - how the stream is cut into reads changes nothing: the same messages, the same close code;
// - every message is whole and legal: no continuation kind, text is UTF-8 and within the text
//   limit, control payloads fit 125 bytes, a close carries a valid code (or 1005) and a UTF-8
//   reason, a binary payload sits behind the headroom;
// - a violation is 1002, 1007 or 1009, and is sticky: later feeds consume nothing;
// - memory follows the bytes received, not a declared length (at most twice what arrived plus
//   one bounded growth chunk).
#include "targets.hpp"

#include "deskstream/ws_codec.hpp"

#include <algorithm>
#include <optional>
#include <vector>

namespace deskstream::fuzz {

namespace ws = deskstream::core::ws;

namespace {

struct Outcome {
    std::vector<ws::Message> messages;
    std::optional<std::uint16_t> closeCode;
};

bool sameMessage(const ws::Message& a, const ws::Message& b) {
    return a.kind == b.kind && a.offset == b.offset && a.bytes == b.bytes &&
           a.closeCode == b.closeCode && a.closeReason == b.closeReason;
}

void checkMessage(const ws::Message& m, const ws::Limits& limits) {
    DS_FUZZ_CHECK(m.kind != ws::Opcode::Continuation, "a message has its data kind");
    DS_FUZZ_CHECK(m.offset <= m.bytes.size(), "the payload lies inside the buffer");
    DS_FUZZ_CHECK(m.payloadSize() <= limits.maxMessageBytes, "within the message limit");
    switch (m.kind) {
        case ws::Opcode::Text:
            DS_FUZZ_CHECK(m.offset == 0, "text has no headroom");
            DS_FUZZ_CHECK(m.payloadSize() <= limits.maxTextBytes, "within the text limit");
            DS_FUZZ_CHECK(ws::isValidUtf8(m.payload(), m.payloadSize()), "text is UTF-8");
            break;
        case ws::Opcode::Binary:
            DS_FUZZ_CHECK(m.offset == limits.binaryHeadroom, "binary payload behind the headroom");
            break;
        case ws::Opcode::Close:
            DS_FUZZ_CHECK(m.closeCode == 1005 || ws::isValidCloseCode(m.closeCode),
                          "a valid close code");
            DS_FUZZ_CHECK(
                ws::isValidUtf8(reinterpret_cast<const std::uint8_t*>(m.closeReason.data()),
                                m.closeReason.size()),
                "the close reason is UTF-8");
            [[fallthrough]];
        default:  // Ping, Pong, Close
            DS_FUZZ_CHECK(m.payloadSize() <= 125, "control payloads fit 125 bytes");
    }
}

// Feeds `stream` in reads of `chunk` bytes (0: all at once).
Outcome feedAll(const std::uint8_t* stream, std::size_t size, std::size_t chunk,
                const ws::Limits& limits) {
    ws::Parser parser(limits);
    Outcome o;
    std::size_t fed = 0;
    while (fed < size && !o.closeCode) {
        const std::size_t n = chunk == 0 ? size - fed : std::min(chunk, size - fed);
        const std::size_t before = o.messages.size();
        auto v = parser.feed(stream + fed, n, o.messages);
        fed += n;
        for (std::size_t i = before; i < o.messages.size(); ++i)
            checkMessage(o.messages[i], limits);
        DS_FUZZ_CHECK(
            parser.bufferedBytes() <= 2 * (fed + limits.binaryHeadroom) + (4u << 20) + 256,
            "memory follows the bytes received");
        if (v) {
            DS_FUZZ_CHECK(v->closeCode == 1002 || v->closeCode == 1007 || v->closeCode == 1009,
                          "a violation closes with 1002, 1007 or 1009");
            DS_FUZZ_CHECK(!v->what.empty(), "a violation says why");
            o.closeCode = v->closeCode;
            // Sticky: the stream stays broken and nothing more comes out.
            const std::size_t count = o.messages.size();
            const std::uint8_t more[2] = {0x81, 0x80};
            auto again = parser.feed(more, sizeof more, o.messages);
            DS_FUZZ_CHECK(again && again->closeCode == v->closeCode, "the violation is sticky");
            DS_FUZZ_CHECK(o.messages.size() == count, "nothing after a violation");
        }
    }
    return o;
}

}  // namespace

void wsFrame(const std::uint8_t* data, std::size_t size) {
    if (size < 2) return;
    const std::uint8_t choose = data[0];
    ws::Limits limits;
    static const std::uint64_t kMessage[] = {125, 4096, 65536, 16u << 20};
    static const std::uint64_t kText[] = {16, 125, 1024, 64u << 10};
    limits.maxMessageBytes = kMessage[choose & 3];
    limits.maxTextBytes = kText[(choose >> 2) & 3];
    limits.binaryHeadroom = (choose & 0x10) ? 14 : 0;
    const std::size_t chunk = 1 + data[1] % 17;

    const Outcome whole = feedAll(data + 2, size - 2, 0, limits);
    const Outcome pieces = feedAll(data + 2, size - 2, chunk, limits);
    DS_FUZZ_CHECK(whole.closeCode == pieces.closeCode, "the reads do not change the close code");
    DS_FUZZ_CHECK(whole.messages.size() == pieces.messages.size(),
                  "the reads do not change the messages");
    for (std::size_t i = 0; i < whole.messages.size(); ++i)
        DS_FUZZ_CHECK(sameMessage(whole.messages[i], pieces.messages[i]),
                      "the reads do not change the messages");
}

}  // namespace deskstream::fuzz
