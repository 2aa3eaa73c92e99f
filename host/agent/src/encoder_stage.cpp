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
                           Poco::Logger& log, std::optional<core::damage::TrackerConfig> damage,
                           std::shared_ptr<host::EncoderInstance> lossless)
    : encoder_(encoder),
      hub_(hub),
      mailbox_(mailbox),
      sender_(sender),
      metrics_(metrics),
      clientId_(std::move(clientId)),
      log_(log) {
    if (damage) damage_ = std::make_unique<DamageEncoder>(*damage, encoder_, std::move(lossless));
}

namespace {
constexpr core::Duration kRefineGrace = std::chrono::milliseconds(100);
}  // namespace

void EncoderStage::run() {
    while (true) {
        std::optional<CaptureJob> job;
        core::TimePoint refineAt = core::TimePoint::max();
        if (damage_) {
            std::lock_guard<std::mutex> lock(lastMutex_);
            refineAt = damage_->nextRefinementAt();
        }
        if (refineAt == core::TimePoint::max()) {
            job = mailbox_.take();
            if (!job) return;  // closed
        } else {
            bool closed = false;
            // A grace period: while pictures keep coming the refinement rides along in the
            // next picture's frame (no extra frame); only a still screen needs the timer.
            job = mailbox_.takeUntil(toSteady(refineAt + kRefineGrace), closed);
            if (closed) return;
            if (!job) {  // a lossy region has been still long enough: send it again lossless
                refineDue();
                continue;
            }
        }
        hub_.wake();  // the mailbox is free: the capture thread may grab the next frame now
        for (const auto& item : job->items) encodeAndSend(item, job->captureTimeUs);
        // Hand the frames back: only the capture thread calls release_frame.
        mailbox_.giveBack(std::move(*job));
        hub_.wake();
    }
}

void EncoderStage::encodeFailed(const std::string& error) {
    ++errors_;
    if (error != lastError_) {  // one line per distinct problem, not per frame
        log_.error("agent %s: %s", clientId_, error);
        lastError_ = error;
    }
}

// Damage encoding: the changed regions of the picture as one frame of rects, a key picture
// when one is owed (or the picture repeated as one when nothing changed), nothing when nothing
// changed (docs/agent.md, "Damage-driven streaming").
void EncoderStage::damageItem(const CaptureJob::Item& item, std::uint64_t captureTimeUs) {
    const int quality = hub_.with([](const core::AgentSession& s) { return s.quality(); });
    std::lock_guard<std::mutex> lock(lastMutex_);
    std::string error;
    const auto encodeStart = std::chrono::steady_clock::now();
    bool ok = false;
    if (item.repeat) {
        ok = damage_->repeat(item.monitor, quality, wallUs(), monoNow(), prepared_, error);
        if (ok) ++repeats_;
        if (!ok && error.empty()) return;  // no picture yet: the next new one goes
    } else {
        ok = damage_->picture(item.monitor, item.frame(), item.key, quality, captureTimeUs,
                              monoNow(), prepared_, error);
        if (item.grabSeconds > 0 && ok && prepared_.count > 0)
            metrics_.captured(prepared_.rects[0].header.codec, item.grabSeconds);
    }
    if (!ok) {
        encodeFailed(error);
        return;
    }
    lastError_.clear();
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - encodeStart).count();
    for (std::size_t i = 0; i < prepared_.count; ++i)
        metrics_.encoded(prepared_.rects[i].header.codec, seconds / prepared_.count,
                         prepared_.rects[i].header.payloadLength);
    sendPrepared(prepared_);
}

void EncoderStage::refineDue() {
    std::lock_guard<std::mutex> lock(lastMutex_);
    std::string error;
    if (!damage_->refine(monoNow(), wallUs(), prepared_, error)) {
        encodeFailed(error);
        return;
    }
    sendPrepared(prepared_);
}

// One frame number for all rects of the frame; the window counts the frame once.
void EncoderStage::sendPrepared(PreparedFrame& frame) {
    if (frame.count == 0) return;
    const std::uint16_t monitor = frame.rects[0].header.monitor;
    auto [admitted, windowDrop] = hub_.with([this](core::AgentSession& s) {
        const std::uint64_t droppedBefore = s.flow().dropped();
        std::optional<core::AdmittedFrame> a;
        if (s.wantsFrames()) a = s.admitFrame(monoNow());
        metrics_.quality(s.quality());
        metrics_.inFlight(static_cast<int>(s.flow().inFlight()));
        return std::make_pair(a, s.flow().dropped() > droppedBefore);
    });
    if (windowDrop) metrics_.windowDrop();
    if (!admitted) {  // the viewers miss this change: the next picture is a whole one
        damage_->notSent(monitor);
        return;
    }
    for (std::size_t i = 0; i < frame.count; ++i) {
        RectMessage& m = frame.rects[i];
        m.header.frameNumber = admitted->frameNumber;
        m.header.streamId = admitted->streamId;
        core::encodeFrameHeader(m.header, m.bytes.data());
        if (!sender_.sendFrame(m.bytes.data(), m.bytes.size())) {
            damage_->notSent(monitor);  // a torn frame: the next one is whole
            return;
        }
    }
}

void EncoderStage::encodeAndSend(const CaptureJob::Item& item, std::uint64_t captureTimeUs) {
    if (damage_) {
        damageItem(item, captureTimeUs);
        return;
    }
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
    if (damage_) {  // kept as the monitor's picture; the first frame sent is a key picture
        std::lock_guard<std::mutex> lock(lastMutex_);
        std::string error;
        const int quality = hub_.with([](const core::AgentSession& s) { return s.quality(); });
        if (!damage_->picture(monitor, frame, true, quality, captureTimeUs, monoNow(), prepared_,
                              error))
            throw std::runtime_error("encoder: " + error);
        damage_->notSent(monitor);  // never sent: no refinement of it, and a key goes first
        std::size_t bytes = 0;
        for (std::size_t i = 0; i < prepared_.count; ++i)
            bytes += prepared_.rects[i].header.payloadLength;
        return bytes;
    }
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
    if (damage_) damage_->forget();
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
