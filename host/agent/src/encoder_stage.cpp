// The encode thread: mailbox -> encoder plugin -> window admission -> sender (see
// encoder_stage.hpp).
#include "encoder_stage.hpp"

#include "clock.hpp"

#include "deskstream/core/frame_header.hpp"

#include <algorithm>
#include <chrono>
#include <utility>
#include <cstring>
#include <stdexcept>

namespace deskstream::agent {

EncoderStage::EncoderStage(EncoderSlot& encoder, SessionHub& hub, FrameMailbox& mailbox,
                           FrameSender& sender, core::AgentMetrics& metrics, std::string clientId,
                           Poco::Logger& log)
    : encoder_(encoder),
      hub_(hub),
      mailbox_(mailbox),
      sender_(sender),
      metrics_(metrics),
      clientId_(std::move(clientId)),
      log_(log) {}

void EncoderStage::run() {
    while (auto job = mailbox_.take()) {
        hub_.wake();  // the mailbox is free: the capture thread may grab the next frame now
        for (const auto& item : job->items) encodeAndSend(item, job->captureTimeUs);
        // Hand the frames back: only the capture thread calls release_frame.
        mailbox_.giveBack(std::move(*job));
        hub_.wake();
    }
}

void EncoderStage::encodeAndSend(const CaptureJob::Item& item, std::uint64_t captureTimeUs) {
    if (item.repeat) {
        resendLast(item.monitor);
        return;
    }
    core::FrameHeader h;
    if (!encode(item, captureTimeUs, h)) return;
    {
        std::lock_guard<std::mutex> lock(lastMutex_);
        LastFrame& last = last_[item.monitor];
        last.header = h;
        last.message.assign(message_.begin(), message_.end());  // capacity reused across frames
    }
    admitAndSend(h);
}

std::size_t EncoderStage::prime(std::uint16_t monitor, const ds_frame& frame,
                                std::uint64_t captureTimeUs) {
    CaptureJob::Item item;
    item.monitor = monitor;
    item.composite = frame;
    core::FrameHeader h;
    if (!encode(item, captureTimeUs, h)) throw std::runtime_error("encoder: " + lastError_);
    std::lock_guard<std::mutex> lock(lastMutex_);
    LastFrame& last = last_[monitor];
    last.header = h;
    last.message = message_;
    return h.payloadLength;
}

void EncoderStage::forgetLastFrames() {
    std::lock_guard<std::mutex> lock(lastMutex_);
    last_.clear();
}

// The same picture again: a whole (key) frame under a new frame number.
void EncoderStage::resendLast(std::uint16_t monitor) {
    core::FrameHeader h;
    {
        std::lock_guard<std::mutex> lock(lastMutex_);
        auto it = last_.find(monitor);
        if (it == last_.end()) return;  // nothing captured yet: the next new picture goes
        h = it->second.header;
        message_.assign(it->second.message.begin(), it->second.message.end());
    }
    ++repeats_;
    admitAndSend(h);
}

// Encodes the picture into message_ (header bytes left to admitAndSend) and fills `h`.
bool EncoderStage::encode(const CaptureJob::Item& item, std::uint64_t captureTimeUs,
                          core::FrameHeader& h) {
    const int quality = hub_.with([](const core::AgentSession& s) { return s.quality(); });
    ds_encode_params params{};
    params.struct_size = sizeof params;
    params.quality = quality;
    params.keyframe = 1;
    const ds_frame& frame = item.frame();
    const auto encodeStart = std::chrono::steady_clock::now();
    const bool ok = encoder_.locked([&](host::EncoderInstance& encoder) {
        ds_encoded out{};
        try {
            out = encoder.encode(frame, params);
        } catch (const std::exception& e) {
            ++errors_;
            if (e.what() != lastError_) {  // one line per distinct problem, not per frame
                log_.error("agent %s: %s", clientId_, std::string(e.what()));
                lastError_ = e.what();
            }
            return false;
        }
        lastError_.clear();
        h.codec = static_cast<core::FrameCodec>(out.codec);
        h.quality =
            static_cast<std::uint8_t>(std::clamp(out.quality ? out.quality : quality, 0, 100));
        h.payloadLength = static_cast<std::uint32_t>(out.size);
        // The output is only valid until the next encode: copied out under the lock.
        message_.resize(core::kFrameHeaderSize + out.size);  // capacity reused across frames
        std::memcpy(message_.data() + core::kFrameHeaderSize, out.data, out.size);
        return true;
    });
    if (!ok) return false;
    metrics_.encoded(
        h.codec,
        std::chrono::duration<double>(std::chrono::steady_clock::now() - encodeStart).count(),
        h.payloadLength);
    if (item.grabSeconds > 0)
        metrics_.captured(h.codec, item.grabSeconds);  // not the start-up frame's
    h.flags = core::frame_flags::kKey | core::frame_flags::kLastRect;
    h.captureTimeUs = frame.capture_time_us ? frame.capture_time_us : captureTimeUs;
    h.monitor = item.monitor;
    h.screenWidth = frame.width;
    h.screenHeight = frame.height;
    h.rectX = 0;
    h.rectY = 0;
    h.rectWidth = frame.width;
    h.rectHeight = frame.height;
    return true;
}

void EncoderStage::admitAndSend(core::FrameHeader& h) {
    auto [admitted, windowDrop] = hub_.with([this](core::AgentSession& s) {
        const std::uint64_t droppedBefore = s.flow().dropped();
        auto a = s.admitFrame(monoNow());
        metrics_.quality(s.quality());
        metrics_.inFlight(static_cast<int>(s.flow().inFlight()));
        return std::make_pair(a, s.flow().dropped() > droppedBefore);
    });
    if (windowDrop) metrics_.windowDrop();
    if (!admitted) return;  // window full (counted) or no longer registered
    h.frameNumber = admitted->frameNumber;
    h.streamId = admitted->streamId;
    core::encodeFrameHeader(h, message_.data());
    sender_.sendFrame(message_.data(), message_.size());
}

}  // namespace deskstream::agent
