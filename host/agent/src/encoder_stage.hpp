// The encode thread: takes capture jobs from the mailbox, encodes each picture with the quality
// the core session chose, asks the session to admit the frame into the window (frame number,
// stream id) and hands the binary frame to the sender. Encoding frame N overlaps with capturing
// N+1. The encoder instance itself is in the EncoderSlot (set_config may replace it).
#pragma once

#include "encoder_slot.hpp"
#include "frame_mailbox.hpp"
#include "ports.hpp"
#include "session_hub.hpp"

#include <Poco/Logger.h>

#include <atomic>
#include <string>
#include <vector>

namespace deskstream::agent {

class EncoderStage {
public:
    EncoderStage(EncoderSlot& encoder, SessionHub& hub, FrameMailbox& mailbox, FrameSender& sender,
                 std::string clientId, Poco::Logger& log);

    /// The encode thread's body; returns when the mailbox is closed.
    void run();

    std::uint64_t errors() const { return errors_; }

private:
    void encodeAndSend(const CaptureJob::Item& item, std::uint64_t captureTimeUs);

    EncoderSlot& encoder_;
    SessionHub& hub_;
    FrameMailbox& mailbox_;
    FrameSender& sender_;
    const std::string clientId_;
    Poco::Logger& log_;

    std::vector<std::uint8_t> message_;  // header + payload being sent (capacity reused)
    std::string lastError_;
    std::atomic<std::uint64_t> errors_{0};
};

}  // namespace deskstream::agent
