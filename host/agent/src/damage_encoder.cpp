// Damage-driven encoding: new picture -> regions (core DamageTracker) -> rect messages (see
// damage_encoder.hpp).
#include "damage_encoder.hpp"

#include <algorithm>
#include <cstring>

namespace deskstream::agent {

namespace damage = core::damage;

DamageEncoder::DamageEncoder(damage::TrackerConfig config, EncoderSlot& lossy,
                             std::shared_ptr<host::EncoderInstance> lossless)
    : config_(config), lossy_(lossy), lossless_(std::move(lossless)) {}

DamageEncoder::Monitor& DamageEncoder::monitor(std::uint16_t index) {
    auto it = monitors_.find(index);
    if (it == monitors_.end()) it = monitors_.emplace(index, Monitor(config_)).first;
    return it->second;
}

ds_frame DamageEncoder::Monitor::frame(std::uint16_t monitor) const {
    ds_frame f{};
    f.struct_size = sizeof f;
    f.monitor = monitor;
    f.width = width;
    f.height = height;
    f.stride = width * 4;
    f.format = DS_PIXEL_BGRA;
    f.data = pixels.data();
    return f;
}

// Copies what the viewers now have: the whole picture, or only the regions just sent (the rest
// is unchanged, or outside the plugin's damage and so not sent either).
void DamageEncoder::keep(Monitor& m, const ds_frame& frame,
                         const std::vector<damage::Region>* only) {
    if (!only || m.width != frame.width || m.height != frame.height) {
        m.width = frame.width;
        m.height = frame.height;
        m.pixels.resize(std::size_t{frame.width} * frame.height * 4);
        for (std::uint32_t y = 0; y < frame.height; ++y)
            std::memcpy(&m.pixels[std::size_t{y} * frame.width * 4],
                        frame.data + std::size_t{y} * frame.stride, std::size_t{frame.width} * 4);
        return;
    }
    for (const damage::Region& r : *only)
        for (std::uint32_t y = r.rect.y; y < r.rect.y + r.rect.height; ++y)
            std::memcpy(&m.pixels[(std::size_t{y} * frame.width + r.rect.x) * 4],
                        frame.data + std::size_t{y} * frame.stride + std::size_t{r.rect.x} * 4,
                        std::size_t{r.rect.width} * 4);
}

bool DamageEncoder::encodeRegions(std::uint16_t monitor, const ds_frame& frame,
                                  const std::vector<damage::Region>& regions, bool key, int quality,
                                  std::uint64_t captureTimeUs, PreparedFrame& out,
                                  std::string& error) {
    out.count = 0;
    out.key = key;
    out.refine = !regions.empty() && regions.front().refine;
    if (out.rects.size() < regions.size()) out.rects.resize(regions.size());
    for (std::size_t i = 0; i < regions.size(); ++i) {
        const damage::Region& region = regions[i];
        const bool lossless = region.content == damage::Content::Lossless;
        ds_encode_params params{};
        params.struct_size = sizeof params;
        params.quality = lossless ? 100 : quality;
        params.keyframe = 1;
        params.rect = ds_rect{region.rect.x, region.rect.y, region.rect.width, region.rect.height};
        RectMessage& msg = out.rects[i];
        auto encodeWith = [&](host::EncoderInstance& encoder) {
            ds_encoded enc = encoder.encode(frame, params);
            msg.header.codec = static_cast<core::FrameCodec>(enc.codec);
            msg.header.quality = static_cast<std::uint8_t>(
                std::clamp(enc.quality ? enc.quality : params.quality, 0, 100));
            msg.header.payloadLength = static_cast<std::uint32_t>(enc.size);
            msg.bytes.resize(core::kFrameHeaderSize + enc.size);  // capacity kept
            std::memcpy(msg.bytes.data() + core::kFrameHeaderSize, enc.data, enc.size);
        };
        try {
            if (lossless && lossless_) {
                encodeWith(*lossless_);  // the encode thread's own instance: no lock needed
            } else {
                lossy_.locked([&](host::EncoderInstance& e) { encodeWith(e); });
            }
        } catch (const std::exception& e) {
            error = e.what();
            out.count = 0;
            return false;
        }
        core::FrameHeader& h = msg.header;
        h.captureTimeUs = frame.capture_time_us ? frame.capture_time_us : captureTimeUs;
        h.monitor = monitor;
        h.screenWidth = frame.width;
        h.screenHeight = frame.height;
        h.rectX = region.rect.x;
        h.rectY = region.rect.y;
        h.rectWidth = region.rect.width;
        h.rectHeight = region.rect.height;
        // A key picture is one whole rect (key + last, as in full encoding); otherwise every
        // rect is partial and the last one closes the frame (docs/protocol.md "Frames").
        const bool last = i + 1 == regions.size();
        h.flags =
            key ? static_cast<std::uint8_t>(core::frame_flags::kKey | core::frame_flags::kLastRect)
                : static_cast<std::uint8_t>(core::frame_flags::kPartial |
                                            (last ? core::frame_flags::kLastRect : 0));
        ++out.count;
    }
    return true;
}

bool DamageEncoder::picture(std::uint16_t index, const ds_frame& frame, bool key, int quality,
                            std::uint64_t captureTimeUs, core::TimePoint now, PreparedFrame& out,
                            std::string& error) {
    Monitor& m = monitor(index);
    out.count = 0;
    const damage::Picture cur{frame.data, frame.width, frame.height, frame.stride};
    if (key || m.needKey || m.width != frame.width || m.height != frame.height) {
        std::vector<damage::Region> regions{m.tracker.key(cur, now)};
        if (!encodeRegions(index, frame, regions, true, quality, captureTimeUs, out, error))
            return false;
        keep(m, frame, nullptr);
        m.needKey = false;
        return true;
    }
    // The plugin's damage (DS_CAPTURE_CAP_DAMAGE): only there is compared. NULL with count 0
    // means everything may have changed (plugin.h).
    const std::vector<damage::Rect>* hint = nullptr;
    if (frame.damage) {
        damage_.clear();
        for (std::uint32_t i = 0; i < frame.damage_count; ++i)
            damage_.push_back({frame.damage[i].x, frame.damage[i].y, frame.damage[i].width,
                               frame.damage[i].height});
        hint = &damage_;
    }
    std::vector<damage::Region> regions = m.tracker.onPicture(m.picture(), cur, hint, now);
    // Refinements that are due ride along in this frame (encoded from the new picture, which
    // equals the viewers' outside the changed regions), so they never add a frame above the
    // fps ceiling while the screen keeps changing.
    if (!regions.empty() && m.tracker.nextRefinementAt() <= now) {
        std::vector<damage::Region> due = m.tracker.takeRefinements(now);
        regions.insert(regions.end(), due.begin(), due.end());
    }
    if (regions.empty()) return true;
    if (!encodeRegions(index, frame, regions, false, quality, captureTimeUs, out, error)) {
        m.needKey = true;
        return false;
    }
    keep(m, frame, &regions);
    return true;
}

bool DamageEncoder::repeat(std::uint16_t index, int quality, std::uint64_t captureTimeUs,
                           core::TimePoint now, PreparedFrame& out, std::string& error) {
    out.count = 0;
    auto it = monitors_.find(index);
    if (it == monitors_.end() || it->second.pixels.empty()) return false;
    Monitor& m = it->second;
    const ds_frame frame = m.frame(index);
    std::vector<damage::Region> regions{m.tracker.key(m.picture(), now)};
    if (!encodeRegions(index, frame, regions, true, quality, captureTimeUs, out, error))
        return false;
    m.needKey = false;
    return true;
}

core::TimePoint DamageEncoder::nextRefinementAt() const {
    core::TimePoint next = core::TimePoint::max();
    for (const auto& [index, m] : monitors_)
        if (!m.needKey) next = std::min(next, m.tracker.nextRefinementAt());
    return next;
}

bool DamageEncoder::refine(core::TimePoint now, std::uint64_t captureTimeUs, PreparedFrame& out,
                           std::string& error) {
    out.count = 0;
    for (auto& [index, m] : monitors_) {
        if (m.needKey || m.tracker.nextRefinementAt() > now) continue;
        std::vector<damage::Region> regions = m.tracker.takeRefinements(now);
        if (regions.empty()) continue;
        const ds_frame frame = m.frame(index);
        if (!encodeRegions(index, frame, regions, false, 100, captureTimeUs, out, error)) {
            m.needKey = true;
            return false;
        }
        return true;
    }
    return true;
}

void DamageEncoder::notSent(std::uint16_t index) { monitor(index).needKey = true; }

}  // namespace deskstream::agent
