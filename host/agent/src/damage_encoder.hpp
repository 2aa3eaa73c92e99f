// Damage-driven encoding for the encode thread (docs/agent.md, "Damage-driven streaming"): per
// monitor, the picture the viewers have and core's DamageTracker; turns a new picture into the
// rect messages of one frame (the changed regions: text and UI through the lossless encoder,
// photo and video through the main encoder at the adaptive quality), a key picture, or the
// lossless refinement of regions that were sent lossy. Message headers are filled except the
// frame number and stream id, which the window gives when the whole frame is admitted.
#pragma once

#include "encoder_slot.hpp"

#include "deskstream/core/damage.hpp"
#include "deskstream/core/frame_header.hpp"
#include "deskstream/host/instances.hpp"

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace deskstream::agent {

/// One rect message: its header (numbered at admission) and header + payload bytes.
struct RectMessage {
    core::FrameHeader header;
    std::vector<std::uint8_t> bytes;  // kFrameHeaderSize header bytes (written at send) + payload
};

/// The messages of one frame; `count` of `rects` are in use (the rest keep their capacity).
struct PreparedFrame {
    std::vector<RectMessage> rects;
    std::size_t count = 0;
    bool key = false;
    bool refine = false;
};

class DamageEncoder {
public:
    /// `lossless` null: lossless regions go through `lossy` (the main encoder) at quality 100.
    DamageEncoder(core::damage::TrackerConfig config, EncoderSlot& lossy,
                  std::shared_ptr<host::EncoderInstance> lossless);

    /// A new picture of `monitor`. `key`: a full picture is owed. Fills `out` (count 0: nothing
    /// changed, nothing to send). Returns false when encoding failed (`error` says why).
    bool picture(std::uint16_t monitor, const ds_frame& frame, bool key, int quality,
                 std::uint64_t captureTimeUs, core::TimePoint now, PreparedFrame& out,
                 std::string& error);
    /// The monitor's current picture again as a key picture (a viewer needs one and the screen
    /// is still). False with count 0 when the monitor has no picture yet.
    bool repeat(std::uint16_t monitor, int quality, std::uint64_t captureTimeUs,
                core::TimePoint now, PreparedFrame& out, std::string& error);
    /// The earliest refinement due over all monitors (TimePoint::max(): none).
    core::TimePoint nextRefinementAt() const;
    /// Refinement due at `now` for one monitor (the first that has one); count 0: none.
    bool refine(core::TimePoint now, std::uint64_t captureTimeUs, PreparedFrame& out,
                std::string& error);
    /// The frame was not sent (window full, not streaming): the next picture must be a key.
    void notSent(std::uint16_t monitor);
    /// Forgets every monitor (layout change).
    void forget() { monitors_.clear(); }

private:
    struct Monitor {
        std::vector<std::uint8_t> pixels;  // the picture the viewers have, BGRA, tight stride
        std::uint32_t width = 0, height = 0;
        bool needKey = true;
        core::damage::DamageTracker tracker;
        explicit Monitor(const core::damage::TrackerConfig& c) : tracker(c) {}
        core::damage::Picture picture() const { return {pixels.data(), width, height, width * 4}; }
        ds_frame frame(std::uint16_t monitor) const;
    };
    Monitor& monitor(std::uint16_t index);
    void keep(Monitor& m, const ds_frame& frame, const std::vector<core::damage::Region>* only);
    bool encodeRegions(std::uint16_t monitor, const ds_frame& frame,
                       const std::vector<core::damage::Region>& regions, bool key, int quality,
                       std::uint64_t captureTimeUs, PreparedFrame& out, std::string& error);

    core::damage::TrackerConfig config_;
    EncoderSlot& lossy_;
    std::shared_ptr<host::EncoderInstance> lossless_;
    std::map<std::uint16_t, Monitor> monitors_;
    std::vector<core::damage::Rect> damage_;  // the plugin's damage as core rects (reused)
};

}  // namespace deskstream::agent
