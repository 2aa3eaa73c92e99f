// Damage detection, merging, classification and the video/refinement tracker (core/damage.hpp):
// real pixel buffers, a fake clock.
#include "deskstream/core/damage.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <vector>

using namespace deskstream::core;
using namespace deskstream::core::damage;
using std::chrono::milliseconds;

namespace {

struct Image {
    std::uint32_t width, height, stride;
    std::vector<std::uint8_t> px;
    Image(std::uint32_t w, std::uint32_t h, std::uint32_t padding = 0)
        : width(w), height(h), stride(w * 4 + padding), px(std::size_t{stride} * h, 0) {
        fill({0, 0, w, h}, 40, 40, 40);
    }
    Picture picture() const { return {px.data(), width, height, stride}; }
    std::uint8_t* at(std::uint32_t x, std::uint32_t y) { return &px[y * stride + x * 4]; }
    void fill(Rect r, std::uint8_t b, std::uint8_t g, std::uint8_t rr) {
        for (std::uint32_t y = r.y; y < r.y + r.height; ++y)
            for (std::uint32_t x = r.x; x < r.x + r.width; ++x) {
                std::uint8_t* p = at(x, y);
                p[0] = b, p[1] = g, p[2] = rr, p[3] = 255;
            }
    }
    // Many colours: a "photo".
    void noise(Rect r, std::uint32_t seed) {
        for (std::uint32_t y = r.y; y < r.y + r.height; ++y)
            for (std::uint32_t x = r.x; x < r.x + r.width; ++x) {
                seed = seed * 1664525u + 1013904223u;
                std::uint8_t* p = at(x, y);
                p[0] = seed >> 8, p[1] = seed >> 16, p[2] = seed >> 24, p[3] = 255;
            }
    }
};

bool covers(const std::vector<Rect>& rects, std::uint32_t x, std::uint32_t y) {
    for (const Rect& r : rects)
        if (x >= r.x && x < r.x + r.width && y >= r.y && y < r.y + r.height) return true;
    return false;
}

TimePoint at(int ms) { return TimePoint(milliseconds(ms)); }

}  // namespace

TEST(DamageDiff, IdenticalPicturesHaveNoChangedTile) {
    Image a(300, 200, 12), b(300, 200, 12);
    TileMask changed(300, 200, 64);
    diffTiles(a.picture(), b.picture(), nullptr, changed);
    EXPECT_EQ(changed.count(), 0u);
    EXPECT_EQ(changed.cols(), 5u);  // 300 / 64 rounded up: a partial last column
    EXPECT_EQ(changed.rows(), 4u);
}

TEST(DamageDiff, OnePixelMarksExactlyItsTileIncludingPartialEdgeTiles) {
    // Table: the changed pixel and the tile it must mark (the last ones in partial tiles).
    struct Case {
        std::uint32_t x, y, col, row;
    };
    for (Case c : {Case{0, 0, 0, 0}, Case{63, 63, 0, 0}, Case{64, 0, 1, 0}, Case{299, 199, 4, 3},
                   Case{200, 130, 3, 2}}) {
        Image a(300, 200, 12), b(300, 200, 12);
        b.at(c.x, c.y)[2] ^= 1;  // one bit of red
        TileMask changed(300, 200, 64);
        diffTiles(a.picture(), b.picture(), nullptr, changed);
        EXPECT_EQ(changed.count(), 1u) << c.x << "," << c.y;
        EXPECT_TRUE(changed.get(c.col, c.row)) << c.x << "," << c.y;
    }
}

TEST(DamageDiff, PaddingBytesBeyondTheWidthAreIgnored) {
    Image a(100, 100, 16), b(100, 100, 16);
    b.px[10 * b.stride + 100 * 4 + 3] = 7;  // inside the stride padding of row 10
    TileMask changed(100, 100, 64);
    diffTiles(a.picture(), b.picture(), nullptr, changed);
    EXPECT_EQ(changed.count(), 0u);
}

TEST(DamageDiff, OnlyCandidateTilesAreCompared) {
    Image a(256, 128), b(256, 128);
    b.fill({10, 10, 5, 5}, 255, 0, 0);   // tile (0,0), not a candidate
    b.fill({130, 70, 5, 5}, 0, 255, 0);  // tile (2,1), a candidate
    TileMask candidates(256, 128, 64), changed(256, 128, 64);
    candidates.setRect({129, 65, 10, 10});
    diffTiles(a.picture(), b.picture(), &candidates, changed);
    EXPECT_EQ(changed.count(), 1u);
    EXPECT_TRUE(changed.get(2, 1));
}

TEST(DamageMerge, ABlockOfTilesBecomesOneRectangleClippedToThePicture) {
    TileMask m(300, 200, 64);
    for (std::uint32_t r = 1; r < 4; ++r)
        for (std::uint32_t c = 2; c < 5; ++c) m.set(c, r);
    auto rects = mergeTiles(m, 16);
    ASSERT_EQ(rects.size(), 1u);
    EXPECT_EQ(rects[0], (Rect{128, 64, 172, 136}));  // to the picture's edge, not 192 x 192
}

TEST(DamageMerge, SeparateAreasStaySeparateAndEveryMarkedTileIsCovered) {
    TileMask m(1920, 1080, 64);
    m.set(0, 0);
    m.set(10, 5);
    m.set(11, 5);
    m.set(29, 16);
    auto rects = mergeTiles(m, 16);
    EXPECT_EQ(rects.size(), 3u);
    std::uint64_t area = 0;
    for (const Rect& r : rects) area += r.area();
    EXPECT_EQ(area, 64u * 64 * 3 + 64u * 56);  // exactly the tiles (the last row is 56 high)
    for (std::uint32_t r = 0; r < m.rows(); ++r)
        for (std::uint32_t c = 0; c < m.cols(); ++c)
            if (m.get(c, r)) {
                EXPECT_TRUE(covers(rects, c * 64, r * 64));
            }
}

TEST(DamageMerge, TheCapMergesCheapestPairsAndTooManyBecomeOneBoundingBox) {
    TileMask m(1920, 1080, 64);
    for (std::uint32_t c = 0; c < 30; c += 2) m.set(c, 3);  // 15 separate tiles on one row
    auto capped = mergeTiles(m, 4);
    EXPECT_EQ(capped.size(), 4u);
    for (std::uint32_t c = 0; c < 30; c += 2) EXPECT_TRUE(covers(capped, c * 64, 3 * 64));
    for (const Rect& r : capped) EXPECT_EQ(r.height, 64u);  // merged along the row only

    TileMask checker(1920, 1080, 64);  // 255 separate tiles: above the pairwise limit
    for (std::uint32_t r = 0; r < checker.rows(); ++r)
        for (std::uint32_t c = (r % 2); c < checker.cols(); c += 2) checker.set(c, r);
    auto box = mergeTiles(checker, 8);
    ASSERT_EQ(box.size(), 1u);
    EXPECT_EQ(box[0], (Rect{0, 0, 1920, 1080}));
}

TEST(DamageClassify, FewColoursAreLosslessNoiseIsLossy) {
    Image img(512, 256);
    img.fill({0, 0, 256, 256}, 255, 255, 255);
    for (std::uint32_t y = 20; y < 240; y += 12) img.fill({10, y, 200, 6}, 0, 0, 0);  // "text"
    img.fill({30, 30, 20, 4}, 200, 30, 30);
    img.noise({256, 0, 256, 256}, 1);
    EXPECT_EQ(classify(img.picture(), {0, 0, 256, 256}), Content::Lossless);
    EXPECT_EQ(classify(img.picture(), {256, 0, 256, 256}), Content::Lossy);
    // The threshold is the configured one: 3 colours against a limit of 2.
    ClassifierConfig strict;
    strict.maxColours = 2;
    EXPECT_EQ(classify(img.picture(), {0, 0, 256, 256}, strict), Content::Lossy);
}

TEST(DamageTracker, NothingChangedGivesNoRegion) {
    Image a(640, 480), b(640, 480);
    DamageTracker t;
    t.key(a.picture(), at(0));
    EXPECT_TRUE(t.onPicture(a.picture(), b.picture(), nullptr, at(100)).empty());
}

TEST(DamageTracker, TypingIsSentLosslessAsSmallRectangles) {
    Image prev(1920, 1080), cur(1920, 1080);
    DamageTracker t;
    t.key(prev.picture(), at(0));
    cur.fill({300, 400, 12, 18}, 255, 255, 255);  // one glyph
    auto regions = t.onPicture(prev.picture(), cur.picture(), nullptr, at(100));
    ASSERT_EQ(regions.size(), 1u);
    EXPECT_EQ(regions[0].rect, (Rect{300, 400, 12, 18}));  // the glyph's pixels, not its tile
    EXPECT_EQ(regions[0].content, Content::Lossless);
    EXPECT_FALSE(regions[0].video);
    // Without tightening: the whole tile.
    TrackerConfig loose;
    loose.tighten = false;
    DamageTracker t2(loose);
    t2.key(prev.picture(), at(0));
    auto tiles = t2.onPicture(prev.picture(), cur.picture(), nullptr, at(100));
    ASSERT_EQ(tiles.size(), 1u);
    EXPECT_EQ(tiles[0].rect, (Rect{256, 384, 64, 64}));
}

TEST(DamageTighten, ShrinksToTheDifferingPixelsAcrossTiles) {
    Image prev(256, 256), cur(256, 256);
    cur.at(70, 10)[0] = 1;
    cur.at(130, 100)[1] = 1;
    EXPECT_EQ(tighten(prev.picture(), cur.picture(), {64, 0, 128, 128}), (Rect{70, 10, 61, 91}));
    EXPECT_EQ(tighten(prev.picture(), cur.picture(), {0, 128, 64, 64}), (Rect{0, 128, 64, 64}));
}

TEST(DamageTracker, PluginDamageLimitsWhatIsCompared) {
    Image prev(640, 480), cur(640, 480);
    cur.fill({10, 10, 4, 4}, 9, 9, 9);    // outside the plugin's damage: not looked at
    cur.fill({400, 300, 4, 4}, 9, 9, 9);  // inside it
    DamageTracker t;
    t.key(prev.picture(), at(0));
    std::vector<Rect> damage{{390, 290, 30, 30}};
    auto regions = t.onPicture(prev.picture(), cur.picture(), &damage, at(100));
    ASSERT_EQ(regions.size(), 1u);
    EXPECT_EQ(regions[0].rect, (Rect{400, 300, 4, 4}));
    // An empty damage list means nothing changed (the plugin said so).
    std::vector<Rect> none;
    EXPECT_TRUE(t.onPicture(prev.picture(), cur.picture(), &none, at(200)).empty());
}

TEST(DamageTracker, AnAreaChangingEveryFrameBecomesOneLossyVideoRectangle) {
    TrackerConfig cfg;
    cfg.videoFrames = 4;
    cfg.videoGap = milliseconds(50);
    DamageTracker t(cfg);
    Image prev(1280, 720), cur(1280, 720);
    t.key(prev.picture(), at(0));
    const Rect area{200, 150, 400, 300};
    std::vector<Region> regions;
    for (int i = 1; i <= 4; ++i) {
        cur.noise(area, static_cast<std::uint32_t>(i));
        regions = t.onPicture(prev.picture(), cur.picture(), nullptr, at(33 * i));
        prev.px = cur.px;
        if (i < 4) {
            for (const Region& r : regions) EXPECT_FALSE(r.video) << "frame " << i;
        }
    }
    ASSERT_EQ(regions.size(), 1u);
    EXPECT_TRUE(regions[0].video);
    EXPECT_EQ(regions[0].content, Content::Lossy);
    EXPECT_EQ(regions[0].rect, (Rect{192, 128, 448, 384}));  // the tiles' bounding box

    // The same area changing only every 100 ms (above the gap) is never video.
    DamageTracker slow(cfg);
    Image p2(1280, 720), c2(1280, 720);
    slow.key(p2.picture(), at(0));
    for (int i = 1; i <= 8; ++i) {
        c2.noise(area, static_cast<std::uint32_t>(i));
        for (const Region& r : slow.onPicture(p2.picture(), c2.picture(), nullptr, at(100 * i)))
            EXPECT_FALSE(r.video) << "frame " << i;
        p2.px = c2.px;
    }
}

TEST(DamageTracker, ALossyRegionIsRefinedLosslessAfterTheQuietTimeOnce) {
    TrackerConfig cfg;
    cfg.refineAfter = milliseconds(500);
    DamageTracker t(cfg);
    Image prev(640, 480), cur(640, 480);
    t.key(prev.picture(), at(0));  // flat: lossless, nothing to refine
    EXPECT_EQ(t.nextRefinementAt(), TimePoint::max());
    cur.noise({64, 64, 128, 128}, 3);
    auto regions = t.onPicture(prev.picture(), cur.picture(), nullptr, at(1000));
    ASSERT_EQ(regions.size(), 1u);
    EXPECT_EQ(regions[0].content, Content::Lossy);
    EXPECT_EQ(t.nextRefinementAt(), at(1500));
    EXPECT_TRUE(t.takeRefinements(at(1499)).empty());  // not a millisecond early
    auto refined = t.takeRefinements(at(1500));
    ASSERT_EQ(refined.size(), 1u);
    EXPECT_EQ(refined[0].rect, (Rect{64, 64, 128, 128}));  // tile-aligned
    EXPECT_TRUE(refined[0].refine);
    EXPECT_EQ(refined[0].content, Content::Lossless);
    EXPECT_TRUE(t.takeRefinements(at(5000)).empty());  // once
    EXPECT_EQ(t.nextRefinementAt(), TimePoint::max());
}

TEST(DamageTracker, ALossyKeyPictureIsRefinedAndAChangeDelaysTheRefinement) {
    DamageTracker t;
    Image img(640, 480), next(640, 480);
    img.noise({0, 0, 640, 480}, 5);
    next.px = img.px;
    Region key = t.key(img.picture(), at(0));
    EXPECT_EQ(key.rect, (Rect{0, 0, 640, 480}));
    EXPECT_EQ(key.content, Content::Lossy);
    next.noise({0, 0, 64, 64}, 6);  // one tile changes again at 400 ms
    t.onPicture(img.picture(), next.picture(), nullptr, at(400));
    auto refined = t.takeRefinements(at(500));
    // Everything but the tile changed at 400 ms, which waits until 900 ms.
    std::uint64_t area = 0;
    for (const Region& r : refined) area += r.rect.area();
    EXPECT_EQ(area, 640u * 480 - 64 * 64);
    for (const Region& r : refined) EXPECT_FALSE(covers({r.rect}, 0, 0));
    EXPECT_EQ(t.nextRefinementAt(), at(900));
    EXPECT_EQ(t.takeRefinements(at(900)).size(), 1u);
}

TEST(DamageTracker, RefinementOffNeverRefines) {
    TrackerConfig cfg;
    cfg.refine = false;
    DamageTracker t(cfg);
    Image img(320, 240);
    img.noise({0, 0, 320, 240}, 9);
    t.key(img.picture(), at(0));
    EXPECT_EQ(t.nextRefinementAt(), TimePoint::max());
    EXPECT_TRUE(t.takeRefinements(at(60000)).empty());
}
