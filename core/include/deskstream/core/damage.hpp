// deskstream core: what changed on the screen and how to send it (damage-driven streaming,
// docs/agent.md "Damage-driven streaming"). Pure pixel logic, no I/O, no clock of its own.
//
//   * diffTiles: compares a new BGRA picture with the previous one in square tiles (64x64 by
//     default; one memcmp per tile row), optionally only inside the capture plugin's damage
//     rectangles;
//   * mergeTiles: turns the changed tiles into a few rectangles (row runs joined vertically,
//     then the cheapest pairs merged until at most maxRects remain; far too many: one bounding
//     box);
//   * classify: a colour count on a sample of a rectangle: few colours (text, UI) -> lossless,
//     many (photo, video) -> lossy;
//   * DamageTracker: per tile, how long it has kept changing (a tile that changes frame after
//     frame is video: sent lossy, all such tiles as one rectangle) and whether it was last sent
//     lossy (refined, i.e. sent again lossless, once it has been still for refineAfter).
#pragma once

#include "deskstream/core/types.hpp"

#include <cstddef>
#include <cstdint>
#include <vector>

namespace deskstream::core::damage {

struct Rect {
    std::uint32_t x = 0, y = 0, width = 0, height = 0;
    bool operator==(const Rect& o) const {
        return x == o.x && y == o.y && width == o.width && height == o.height;
    }
    std::uint64_t area() const { return std::uint64_t{width} * height; }
};

/// A BGRA picture the caller owns (stride in bytes, >= width * 4).
struct Picture {
    const std::uint8_t* data = nullptr;
    std::uint32_t width = 0, height = 0, stride = 0;
};

/// One bit per tile, row-major; the last column and row may be partial tiles.
class TileMask {
public:
    TileMask() = default;
    TileMask(std::uint32_t width, std::uint32_t height, std::uint32_t tile);
    std::uint32_t cols() const { return cols_; }
    std::uint32_t rows() const { return rows_; }
    std::uint32_t tile() const { return tile_; }
    bool get(std::uint32_t col, std::uint32_t row) const { return bits_[row * cols_ + col] != 0; }
    void set(std::uint32_t col, std::uint32_t row, bool on = true) {
        bits_[row * cols_ + col] = on ? 1 : 0;
    }
    void clear();
    void setAll();
    /// Sets every tile that `r` touches (clipped to the picture).
    void setRect(const Rect& r);
    std::size_t count() const;
    /// The pixel rectangle of a tile (clipped to the picture).
    Rect tileRect(std::uint32_t col, std::uint32_t row) const;

private:
    std::uint32_t width_ = 0, height_ = 0, tile_ = 64, cols_ = 0, rows_ = 0;
    std::vector<std::uint8_t> bits_;
};

/// Marks in `changed` (sized for `cur`) every tile where `cur` differs from `prev`. With
/// `candidates` non-null only the tiles it marks are compared (the plugin's damage); the rest
/// stay clear. `prev` and `cur` must have the same size.
void diffTiles(const Picture& prev, const Picture& cur, const TileMask* candidates,
               TileMask& changed);

/// The marked tiles as at most `maxRects` rectangles covering every marked tile (and possibly
/// some unmarked ones). maxRects 0 is taken as 1.
std::vector<Rect> mergeTiles(const TileMask& mask, std::size_t maxRects);

/// The smallest rectangle inside `r` holding every pixel where `cur` differs from `prev`; `r`
/// itself when nothing differs there.
Rect tighten(const Picture& prev, const Picture& cur, const Rect& r);

enum class Content { Lossless, Lossy };

struct ClassifierConfig {
    std::size_t samples = 1024;   // pixels looked at, spread over the rectangle
    std::size_t maxColours = 48;  // more distinct colours than this among them: lossy
};

/// Text and flat UI use few colours; photos and video many. Looks at about `samples` pixels.
Content classify(const Picture& picture, const Rect& r, const ClassifierConfig& config = {});

struct TrackerConfig {
    std::uint32_t tile = 64;
    std::size_t maxRects = 16;  // rectangles per frame (besides the video one)
    ClassifierConfig classifier;
    bool classify = true;  // false: every non-video region is lossless
    bool tighten = true;   // shrink each region to the pixels that differ inside its tiles
    int videoFrames = 8;   // changed this many times in a row: video
    Duration videoGap = std::chrono::milliseconds(50);  // a longer pause ends the row
    bool refine = true;  // send lossy regions again lossless once still
    Duration refineAfter = std::chrono::milliseconds(500);
};

/// One rectangle to encode and send.
struct Region {
    Rect rect;
    Content content = Content::Lossless;
    bool video = false;   // the frame's changing-every-frame area
    bool refine = false;  // a lossy region sent again (lossless) now that it is still
};

class DamageTracker {
public:
    explicit DamageTracker(TrackerConfig config = {});

    /// A new picture arrived at `now`. `prev` is the picture the viewers have (same size, else
    /// call key()). `damage` non-null: the capture plugin's changed areas (only they are
    /// compared); null: compare everything. Returns the regions to send; empty when nothing
    /// changed.
    std::vector<Region> onPicture(const Picture& prev, const Picture& cur,
                                  const std::vector<Rect>* damage, TimePoint now);

    /// A full picture is sent (a key frame) at `now`: forgets the history of a picture of
    /// another size, and marks the whole picture as sent with `content`.
    Region key(const Picture& cur, TimePoint now);

    /// The lossy regions that have been still for refineAfter at `now`, to send again lossless.
    /// Empty when none is due. Each is then marked as sent lossless.
    std::vector<Region> takeRefinements(TimePoint now);

    /// When takeRefinements has something to return; TimePoint::max() when nothing waits.
    TimePoint nextRefinementAt() const;

    const TrackerConfig& config() const { return config_; }
    const TileMask& lastChanged() const { return changed_; }

private:
    struct TileState {
        TimePoint lastChange = TimePoint::min();
        int streak = 0;             // changes in a row, each within videoGap of the previous
        bool lossyPending = false;  // last sent lossy and not refined yet
    };
    void resize(std::uint32_t width, std::uint32_t height);
    void markSent(const Rect& r, Content content, TimePoint now);
    TileState& state(std::uint32_t col, std::uint32_t row) {
        return tiles_[row * changed_.cols() + col];
    }

    TrackerConfig config_;
    std::uint32_t width_ = 0, height_ = 0;
    TileMask changed_, candidates_, work_;
    std::vector<TileState> tiles_;
};

}  // namespace deskstream::core::damage
