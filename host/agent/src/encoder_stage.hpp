// The encode thread: takes capture jobs from the mailbox, encodes each picture with the quality
// the core session chose, asks the session to admit the frame into the window (frame number,
// stream id) and hands the binary frame to the sender. Encoding frame N overlaps with capturing
// N+1. The encoder instance itself is in the EncoderSlot (set_config may replace it). It keeps
// each monitor's last encoded frame and sends it again, with a new frame number, for a capture
// job's repeat items (a still screen and a viewer that needs a picture: docs/agent.md).
// With damage encoding (DamageEncoder) it sends only the changed regions of each picture as
// the rects of one frame, key pictures when owed, and lossless refinements when they are due
// (it then also wakes for the refinement deadline, not only for jobs).
#pragma once

#include "damage_encoder.hpp"

#include "encoder_slot.hpp"
#include "frame_mailbox.hpp"
#include "ports.hpp"
#include "session_hub.hpp"

#include <Poco/Logger.h>

#include "deskstream/core/agent_metrics.hpp"
#include "deskstream/core/frame_header.hpp"

#include <atomic>
#include <map>
#include <memory>
#include <optional>
#include <mutex>
#include <string>
#include <vector>

namespace deskstream::agent {

class EncoderStage {
public:
    EncoderStage(EncoderSlot& encoder, SessionHub& hub, FrameMailbox& mailbox, FrameSender& sender,
                 core::AgentMetrics& metrics, std::string clientId, Poco::Logger& log,
                 std::optional<core::damage::TrackerConfig> damage = std::nullopt,
                 std::shared_ptr<host::EncoderInstance> lossless = nullptr);

    /// The encode thread's body; returns when the mailbox is closed.
    void run();

    /// Before the threads start: encodes `frame` and keeps it as `monitor`'s last frame without
    /// sending it (the runtime's first grab). Returns the payload size; throws when the encoder
    /// fails.
    std::size_t prime(std::uint16_t monitor, const ds_frame& frame, std::uint64_t captureTimeUs);
    /// Forgets every last frame (the monitor layout changed: their size is stale).
    void forgetLastFrames();

    std::uint64_t errors() const { return errors_; }
    std::uint64_t repeats() const { return repeats_; }

private:
    struct LastFrame {
        core::FrameHeader header;
        std::vector<std::uint8_t> message;  // header + payload as last sent
    };
    void encodeAndSend(const CaptureJob::Item& item, std::uint64_t captureTimeUs);
    bool encode(const CaptureJob::Item& item, std::uint64_t captureTimeUs, core::FrameHeader& h);
    void resendLast(std::uint16_t monitor);
    void admitAndSend(core::FrameHeader& h);
    void damageItem(const CaptureJob::Item& item, std::uint64_t captureTimeUs);
    void refineDue();
    void sendPrepared(PreparedFrame& frame);
    void encodeFailed(const std::string& error);

    EncoderSlot& encoder_;
    SessionHub& hub_;
    FrameMailbox& mailbox_;
    FrameSender& sender_;
    core::AgentMetrics& metrics_;
    const std::string clientId_;
    Poco::Logger& log_;

    std::vector<std::uint8_t> message_;  // header + payload being sent (capacity reused)
    std::string lastError_;
    std::atomic<std::uint64_t> errors_{0}, repeats_{0};
    std::mutex lastMutex_;  // the encode thread, and forgetLastFrames() from the capture thread
    std::map<std::uint16_t, LastFrame> last_;
    std::unique_ptr<DamageEncoder> damage_;  // null: full encoding (guarded by lastMutex_)
    PreparedFrame prepared_;                 // the damage frame being sent (capacity reused)
};

}  // namespace deskstream::agent
