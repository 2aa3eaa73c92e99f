// deskstream core: change detection, rectangle merging, content classification and the
// video/refinement tracker (see damage.hpp).
#include "deskstream/core/damage.hpp"

#include <algorithm>
#include <array>
#include <cstring>

namespace deskstream::core::damage {

// ---------------------------------------------------------------- TileMask

TileMask::TileMask(std::uint32_t width, std::uint32_t height, std::uint32_t tile)
    : width_(width),
      height_(height),
      tile_(std::max<std::uint32_t>(tile, 1)),
      cols_((width + tile_ - 1) / tile_),
      rows_((height + tile_ - 1) / tile_),
      bits_(static_cast<std::size_t>(cols_) * rows_, 0) {}

void TileMask::clear() { std::fill(bits_.begin(), bits_.end(), 0); }
void TileMask::setAll() { std::fill(bits_.begin(), bits_.end(), 1); }

void TileMask::setRect(const Rect& r) {
    if (r.width == 0 || r.height == 0 || r.x >= width_ || r.y >= height_) return;
    const std::uint64_t x1 = std::min<std::uint64_t>(std::uint64_t{r.x} + r.width, width_);
    const std::uint64_t y1 = std::min<std::uint64_t>(std::uint64_t{r.y} + r.height, height_);
    const auto c1 = static_cast<std::uint32_t>((x1 + tile_ - 1) / tile_);
    const auto r1 = static_cast<std::uint32_t>((y1 + tile_ - 1) / tile_);
    for (std::uint32_t row = r.y / tile_; row < r1; ++row)
        for (std::uint32_t col = r.x / tile_; col < c1; ++col) set(col, row);
}

std::size_t TileMask::count() const {
    return static_cast<std::size_t>(std::count(bits_.begin(), bits_.end(), std::uint8_t{1}));
}

Rect TileMask::tileRect(std::uint32_t col, std::uint32_t row) const {
    Rect r;
    r.x = col * tile_;
    r.y = row * tile_;
    r.width = std::min(tile_, width_ - r.x);
    r.height = std::min(tile_, height_ - r.y);
    return r;
}

// ---------------------------------------------------------------- diffTiles

// Row by row (the pictures are read once, in memory order); a tile found changed is not
// compared again on its later rows.
void diffTiles(const Picture& prev, const Picture& cur, const TileMask* candidates,
               TileMask& changed) {
    changed = TileMask(cur.width, cur.height, changed.tile() ? changed.tile() : 64);
    if (prev.width != cur.width || prev.height != cur.height) {
        changed.setAll();
        return;
    }
    const std::uint32_t tile = changed.tile();
    for (std::uint32_t row = 0; row < changed.rows(); ++row) {
        const std::uint32_t y0 = row * tile;
        const std::uint32_t y1 = std::min(y0 + tile, cur.height);
        for (std::uint32_t y = y0; y < y1; ++y) {
            const std::uint8_t* a = prev.data + static_cast<std::size_t>(y) * prev.stride;
            const std::uint8_t* b = cur.data + static_cast<std::size_t>(y) * cur.stride;
            for (std::uint32_t col = 0; col < changed.cols(); ++col) {
                if (changed.get(col, row)) continue;
                if (candidates && !candidates->get(col, row)) continue;
                const std::size_t x0 = static_cast<std::size_t>(col) * tile;
                const std::size_t w = std::min<std::size_t>(tile, cur.width - x0);
                if (std::memcmp(a + x0 * 4, b + x0 * 4, w * 4) != 0) changed.set(col, row);
            }
        }
    }
}

// ---------------------------------------------------------------- mergeTiles

namespace {
struct TileBox {  // in tiles, half-open
    std::uint32_t c0, r0, c1, r1;
    std::uint64_t area() const { return std::uint64_t{c1 - c0} * (r1 - r0); }
};
TileBox unite(const TileBox& a, const TileBox& b) {
    return {std::min(a.c0, b.c0), std::min(a.r0, b.r0), std::max(a.c1, b.c1), std::max(a.r1, b.r1)};
}
// Above this many boxes the pairwise merging (cubic) is not worth it: one bounding box.
constexpr std::size_t kMaxBoxesToMerge = 128;
}  // namespace

std::vector<Rect> mergeTiles(const TileMask& mask, std::size_t maxRects) {
    maxRects = std::max<std::size_t>(maxRects, 1);
    std::vector<TileBox> boxes;  // closed ones and the ones still open (ending at row - 1)
    std::vector<std::size_t> open, nextOpen;
    for (std::uint32_t row = 0; row < mask.rows(); ++row) {
        nextOpen.clear();
        std::uint32_t col = 0;
        while (col < mask.cols()) {
            if (!mask.get(col, row)) {
                ++col;
                continue;
            }
            std::uint32_t end = col;
            while (end < mask.cols() && mask.get(end, row)) ++end;
            // The same run on the row above extends downwards; otherwise a new box.
            auto same = std::find_if(open.begin(), open.end(), [&](std::size_t i) {
                return boxes[i].c0 == col && boxes[i].c1 == end;
            });
            if (same != open.end()) {
                boxes[*same].r1 = row + 1;
                nextOpen.push_back(*same);
            } else {
                boxes.push_back({col, row, end, row + 1});
                nextOpen.push_back(boxes.size() - 1);
            }
            col = end;
        }
        open.swap(nextOpen);
    }
    if (boxes.size() > maxRects && boxes.size() > kMaxBoxesToMerge) {
        TileBox all = boxes[0];
        for (const auto& b : boxes) all = unite(all, b);
        boxes.assign(1, all);
    }
    // Merge the pair that adds the least uncovered area until few enough remain.
    while (boxes.size() > maxRects) {
        std::size_t bi = 0, bj = 1;
        std::uint64_t best = UINT64_MAX;
        for (std::size_t i = 0; i < boxes.size(); ++i)
            for (std::size_t j = i + 1; j < boxes.size(); ++j) {
                const std::uint64_t u = unite(boxes[i], boxes[j]).area();
                const std::uint64_t cost = u - std::min(u, boxes[i].area() + boxes[j].area());
                if (cost < best) best = cost, bi = i, bj = j;
            }
        boxes[bi] = unite(boxes[bi], boxes[bj]);
        boxes.erase(boxes.begin() + static_cast<std::ptrdiff_t>(bj));
    }
    std::vector<Rect> out;
    out.reserve(boxes.size());
    for (const auto& b : boxes) {
        const Rect first = mask.tileRect(b.c0, b.r0), last = mask.tileRect(b.c1 - 1, b.r1 - 1);
        out.push_back(
            {first.x, first.y, last.x + last.width - first.x, last.y + last.height - first.y});
    }
    return out;
}

// ---------------------------------------------------------------- tighten

Rect tighten(const Picture& prev, const Picture& cur, const Rect& r) {
    auto rowDiffers = [&](std::uint32_t y) {
        return std::memcmp(prev.data + std::size_t{y} * prev.stride + std::size_t{r.x} * 4,
                           cur.data + std::size_t{y} * cur.stride + std::size_t{r.x} * 4,
                           std::size_t{r.width} * 4) != 0;
    };
    std::uint32_t top = r.y, bottom = r.y + r.height;  // half-open
    while (top < bottom && !rowDiffers(top)) ++top;
    if (top == bottom) return r;  // nothing differs (a merged-in area): keep it as it is
    while (bottom > top + 1 && !rowDiffers(bottom - 1)) --bottom;
    std::uint32_t left = r.x + r.width, right = r.x;  // half-open, shrunk from both sides
    for (std::uint32_t y = top; y < bottom; ++y) {
        const std::uint8_t* a = prev.data + std::size_t{y} * prev.stride;
        const std::uint8_t* b = cur.data + std::size_t{y} * cur.stride;
        for (std::uint32_t x = r.x; x < left; ++x)
            if (std::memcmp(a + std::size_t{x} * 4, b + std::size_t{x} * 4, 4) != 0) {
                left = x;
                break;
            }
        for (std::uint32_t x = r.x + r.width; x > right; --x)
            if (std::memcmp(a + std::size_t{x - 1} * 4, b + std::size_t{x - 1} * 4, 4) != 0) {
                right = x;
                break;
            }
    }
    return {left, top, right - left, bottom - top};
}

// ---------------------------------------------------------------- classify

Content classify(const Picture& picture, const Rect& r, const ClassifierConfig& config) {
    const std::uint64_t area = r.area();
    if (area == 0) return Content::Lossless;
    const std::uint64_t n = std::min<std::uint64_t>(std::max<std::size_t>(config.samples, 1), area);
    // Open addressing over 24-bit colours; the table is at least 2x the colours we count.
    constexpr std::size_t kTable = 1024;
    const std::size_t limit = std::min<std::size_t>(config.maxColours, kTable / 2);
    std::array<std::uint32_t, kTable> table;
    table.fill(UINT32_MAX);
    std::size_t distinct = 0;
    // Rows spread evenly, columns pseudo-random (a fixed generator: the same picture always
    // gives the same answer), so thin lines and narrow glyphs are hit as often as areas.
    std::uint32_t seed = 0x9E3779B9u;
    for (std::uint64_t i = 0; i < n; ++i) {
        seed = seed * 1664525u + 1013904223u;
        const auto y = static_cast<std::uint32_t>((i * r.height) / n);
        const auto x = static_cast<std::uint32_t>((seed >> 8) % r.width);
        const std::uint8_t* p =
            picture.data + static_cast<std::size_t>(r.y + y) * picture.stride + (r.x + x) * 4u;
        const std::uint32_t colour = p[0] | (p[1] << 8) | (p[2] << 16);
        std::size_t h = (colour * 2654435761u) >> 22;  // 10 bits
        while (table[h] != UINT32_MAX && table[h] != colour) h = (h + 1) % kTable;
        if (table[h] == colour) continue;
        table[h] = colour;
        if (++distinct > limit) return Content::Lossy;
    }
    return Content::Lossless;
}

// ---------------------------------------------------------------- DamageTracker

DamageTracker::DamageTracker(TrackerConfig config) : config_(config) {
    config_.tile = std::max<std::uint32_t>(config_.tile, 8);
}

void DamageTracker::resize(std::uint32_t width, std::uint32_t height) {
    if (width == width_ && height == height_ && !tiles_.empty()) return;
    width_ = width;
    height_ = height;
    changed_ = TileMask(width, height, config_.tile);
    candidates_ = changed_;
    work_ = changed_;
    tiles_.assign(static_cast<std::size_t>(changed_.cols()) * changed_.rows(), TileState{});
}

void DamageTracker::markSent(const Rect& r, Content content, TimePoint now) {
    work_.clear();
    work_.setRect(r);
    for (std::uint32_t row = 0; row < work_.rows(); ++row)
        for (std::uint32_t col = 0; col < work_.cols(); ++col) {
            if (!work_.get(col, row)) continue;
            TileState& t = state(col, row);
            if (content == Content::Lossy) {
                t.lossyPending = true;
                t.lastChange = std::max(t.lastChange, now);  // the quiet time starts now
            } else {
                t.lossyPending = false;
            }
        }
}

Region DamageTracker::key(const Picture& cur, TimePoint now) {
    resize(cur.width, cur.height);
    Region region;
    region.rect = {0, 0, cur.width, cur.height};
    region.content =
        config_.classify ? classify(cur, region.rect, config_.classifier) : Content::Lossless;
    for (auto& t : tiles_) t.streak = 0;
    markSent(region.rect, region.content, now);
    return region;
}

std::vector<Region> DamageTracker::onPicture(const Picture& prev, const Picture& cur,
                                             const std::vector<Rect>* damage, TimePoint now) {
    resize(cur.width, cur.height);
    if (damage) {
        candidates_.clear();
        for (const Rect& r : *damage) candidates_.setRect(r);
    }
    diffTiles(prev, cur, damage ? &candidates_ : nullptr, changed_);
    std::vector<Region> out;
    if (changed_.count() == 0) return out;

    // Video: tiles changed in videoFrames pictures in a row; all of them as one lossy box.
    bool anyVideo = false;
    std::uint32_t vc0 = UINT32_MAX, vr0 = UINT32_MAX, vc1 = 0, vr1 = 0;
    for (std::uint32_t row = 0; row < changed_.rows(); ++row)
        for (std::uint32_t col = 0; col < changed_.cols(); ++col) {
            if (!changed_.get(col, row)) continue;
            TileState& t = state(col, row);
            const bool continues =
                t.lastChange != TimePoint::min() && now - t.lastChange <= config_.videoGap;
            t.streak = continues ? t.streak + 1 : 1;
            t.lastChange = now;
            if (config_.videoFrames > 0 && t.streak >= config_.videoFrames) {
                anyVideo = true;
                vc0 = std::min(vc0, col), vr0 = std::min(vr0, row);
                vc1 = std::max(vc1, col + 1), vr1 = std::max(vr1, row + 1);
            }
        }
    work_.clear();
    Region video;
    if (anyVideo) {
        const Rect a = changed_.tileRect(vc0, vr0), b = changed_.tileRect(vc1 - 1, vr1 - 1);
        video.rect = {a.x, a.y, b.x + b.width - a.x, b.y + b.height - a.y};
        video.content = Content::Lossy;
        video.video = true;
        out.push_back(video);
    }
    for (std::uint32_t row = 0; row < changed_.rows(); ++row)
        for (std::uint32_t col = 0; col < changed_.cols(); ++col) {
            const bool inVideo = anyVideo && col >= vc0 && col < vc1 && row >= vr0 && row < vr1;
            if (changed_.get(col, row) && !inVideo) work_.set(col, row);
        }
    for (const Rect& merged : mergeTiles(work_, config_.maxRects)) {
        Region region;
        // Only what differs inside the tiles: a typed glyph is sent as its own few pixels.
        const Rect r = config_.tighten ? tighten(prev, cur, merged) : merged;
        region.rect = r;
        region.content =
            config_.classify ? classify(cur, r, config_.classifier) : Content::Lossless;
        out.push_back(region);
    }
    for (const Region& r : out) markSent(r.rect, r.content, now);
    return out;
}

std::vector<Region> DamageTracker::takeRefinements(TimePoint now) {
    std::vector<Region> out;
    if (!config_.refine || tiles_.empty()) return out;
    TileMask due(width_, height_, config_.tile);
    bool any = false;
    for (std::uint32_t row = 0; row < due.rows(); ++row)
        for (std::uint32_t col = 0; col < due.cols(); ++col) {
            const TileState& t = state(col, row);
            if (t.lossyPending && now - t.lastChange >= config_.refineAfter) {
                due.set(col, row);
                any = true;
            }
        }
    if (!any) return out;
    // Merging may take in neighbours that are still changing: sending them lossless from the
    // same picture is correct, only a little larger.
    for (const Rect& r : mergeTiles(due, config_.maxRects)) {
        Region region;
        region.rect = r;
        region.content = Content::Lossless;
        region.refine = true;
        out.push_back(region);
    }
    for (const Region& r : out) markSent(r.rect, Content::Lossless, now);
    return out;
}

TimePoint DamageTracker::nextRefinementAt() const {
    TimePoint next = TimePoint::max();
    if (!config_.refine) return next;
    for (const TileState& t : tiles_)
        if (t.lossyPending) next = std::min(next, t.lastChange + config_.refineAfter);
    return next;
}

}  // namespace deskstream::core::damage
