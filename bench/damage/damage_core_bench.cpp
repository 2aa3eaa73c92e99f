// ds_damage_core_bench: the cost of core/damage.hpp's pixel work on a 1920x1080 picture
// (docs/performance.md "Damage-driven streaming"): comparing two pictures in 64x64 tiles (the
// worst case is two equal pictures: every byte is read), shrinking a region, classifying one,
// and merging a pathological tile mask.
#include "deskstream/core/damage.hpp"

#include <benchmark/benchmark.h>

#include <cstdint>
#include <vector>

namespace damage = deskstream::core::damage;

namespace {

constexpr std::uint32_t kW = 1920, kH = 1080;

std::vector<std::uint8_t> picture(std::uint32_t seed) {
    std::vector<std::uint8_t> px(std::size_t{kW} * kH * 4);
    for (std::size_t i = 0; i < px.size(); ++i) {
        seed = seed * 1664525u + 1013904223u;
        px[i] = static_cast<std::uint8_t>(seed >> 24);
    }
    return px;
}

void BM_DiffTiles_EqualPictures(benchmark::State& state) {
    const auto a = picture(1), b = a;
    damage::TileMask changed(kW, kH, 64);
    for (auto _ : state) {
        damage::diffTiles({a.data(), kW, kH, kW * 4}, {b.data(), kW, kH, kW * 4}, nullptr, changed);
        benchmark::DoNotOptimize(changed.count());
    }
    state.SetBytesProcessed(state.iterations() * std::int64_t{kW} * kH * 4 * 2);
}
BENCHMARK(BM_DiffTiles_EqualPictures)->Unit(benchmark::kMillisecond);

void BM_DiffTiles_AllDifferent(benchmark::State& state) {
    const auto a = picture(1), b = picture(2);
    damage::TileMask changed(kW, kH, 64);
    for (auto _ : state) {
        damage::diffTiles({a.data(), kW, kH, kW * 4}, {b.data(), kW, kH, kW * 4}, nullptr, changed);
        benchmark::DoNotOptimize(changed.count());
    }
}
BENCHMARK(BM_DiffTiles_AllDifferent)->Unit(benchmark::kMillisecond);

void BM_Tighten_OnePixelIn256x256(benchmark::State& state) {
    const auto a = picture(1);
    auto b = a;
    b[(500 * kW + 600) * 4] ^= 1;
    for (auto _ : state)
        benchmark::DoNotOptimize(damage::tighten({a.data(), kW, kH, kW * 4},
                                                 {b.data(), kW, kH, kW * 4}, {512, 448, 256, 256}));
}
BENCHMARK(BM_Tighten_OnePixelIn256x256)->Unit(benchmark::kMicrosecond);

void BM_Classify_FullScreen(benchmark::State& state) {
    const auto a = picture(1);
    for (auto _ : state)
        benchmark::DoNotOptimize(damage::classify({a.data(), kW, kH, kW * 4}, {0, 0, kW, kH}));
}
BENCHMARK(BM_Classify_FullScreen)->Unit(benchmark::kMicrosecond);

void BM_MergeTiles_Checkerboard(benchmark::State& state) {
    damage::TileMask m(kW, kH, 64);
    for (std::uint32_t r = 0; r < m.rows(); r += 2)
        for (std::uint32_t c = 0; c < m.cols(); c += 2) m.set(c, r);  // 120 separate tiles
    for (auto _ : state) benchmark::DoNotOptimize(damage::mergeTiles(m, 16));
}
BENCHMARK(BM_MergeTiles_Checkerboard)->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
