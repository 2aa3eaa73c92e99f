// Encoder plugins through the SDK (dlopen'ed plugin, C vtable) vs. the raw codec library called
// directly with the same settings, on /work/shared/data/desktop-1080p.png (1920x1080 BGRX).
//
// Counters: MP/s (megapixels encoded per second), bytes_per_frame, psnr_y / psnr_rgb (dB of the
// last output, decoded with the codec's own decoder; computed outside the timed loop).
// After the run a summary prints plugin/raw throughput per codec. Recommended invocation:
//   ds_bench_encoders --benchmark_repetitions=5 --benchmark_enable_random_interleaving=true
// (interleaving spreads machine noise evenly over plugin and raw runs).
#include "ds_encoders_test/testkit.hpp"

#include <avif/avif.h>
#include <benchmark/benchmark.h>
#include <turbojpeg.h>
#include <webp/encode.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <unistd.h>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

using namespace ds_enc_test;

namespace {

constexpr int kQuality = 75;  // the agent's default quality

void finish(benchmark::State& state, ds_codec codec, const uint8_t* data, size_t size) {
    const Image& img = desktopImage();
    state.counters["MP/s"] = benchmark::Counter(img.width * double(img.height) / 1e6,
                                                benchmark::Counter::kIsIterationInvariantRate);
    state.counters["bytes_per_frame"] = double(size);
    const Image decoded = decode(codec, data, size);
    state.counters["psnr_y"] = psnrLuma(decoded, img);
    state.counters["psnr_rgb"] = psnr(decoded, img);
}

// ---------------------------------------------------------------- through the plugin
void runPlugin(benchmark::State& state, const char* name, ds_codec codec,
               const std::map<std::string, std::string>& config) {
    EncoderPlugin plugin(name);
    std::string err;
    if (plugin.create(config, &err) != DS_OK) {
        state.SkipWithError(("create: " + err).c_str());
        return;
    }
    const ds_frame frame = desktopImage().frame();
    ds_encoded out{};
    for (auto _ : state) {
        if (plugin.encode(frame, kQuality, ds_rect{}, out, &err) != DS_OK) {
            state.SkipWithError(("encode: " + err).c_str());
            return;
        }
        benchmark::DoNotOptimize(out.data);
    }
    finish(state, codec, out.data, out.size);
}

void BM_jpeg_plugin(benchmark::State& s) {
    runPlugin(s, "jpeg", DS_CODEC_JPEG, {{"subsampling", "420"}});
}
void BM_webp_plugin(benchmark::State& s) {
    runPlugin(s, "webp", DS_CODEC_WEBP, {{"lossless", "false"}, {"method", "0"}});
}
// "auto" is the webp default.
void BM_webp_lossless_plugin(benchmark::State& s) {
    runPlugin(s, "webp", DS_CODEC_WEBP, {{"lossless", "true"}, {"lossless.level", "1"}});
}
void BM_webp_auto_plugin(benchmark::State& s) {
    runPlugin(s, "webp", DS_CODEC_WEBP, {{"lossless", "auto"}});
}
void BM_avif_plugin(benchmark::State& s) {
    runPlugin(s, "avif", DS_CODEC_AVIF,
              {{"speed", "8"}, {"threads", "2"}, {"codec", "auto"}});  // defaults
}

// Settings sweeps (plugin only), to document what the defaults trade.
void BM_webp_method_plugin(benchmark::State& s) {
    runPlugin(s, "webp", DS_CODEC_WEBP,
              {{"lossless", "false"}, {"method", std::to_string(s.range(0))}});
}
void BM_avif_speed_plugin(benchmark::State& s) {
    runPlugin(s, "avif", DS_CODEC_AVIF, {{"speed", std::to_string(s.range(0))}});
}
void BM_jpeg_444_plugin(benchmark::State& s) {
    runPlugin(s, "jpeg", DS_CODEC_JPEG, {{"subsampling", "444"}});
}

// ---------------------------------------------------------------- raw libraries
void BM_jpeg_raw(benchmark::State& state) {
    const Image& img = desktopImage();
    tjhandle h = tjInitCompress();
    unsigned long capacity = tjBufSize(int(img.width), int(img.height), TJSAMP_420);
    unsigned char* buf = tjAlloc(int(capacity));
    unsigned long size = 0;
    for (auto _ : state) {
        size = capacity;
        if (tjCompress2(h, img.pixels.data(), int(img.width), int(img.stride), int(img.height),
                        TJPF_BGRX, &buf, &size, TJSAMP_420, kQuality, TJFLAG_NOREALLOC) != 0) {
            state.SkipWithError(tjGetErrorStr2(h));
            break;
        }
        benchmark::DoNotOptimize(buf);
    }
    if (size) finish(state, DS_CODEC_JPEG, buf, size);
    tjFree(buf);
    tjDestroy(h);
}

void webpRaw(benchmark::State& state, bool lossless) {
    const Image& img = desktopImage();
    WebPConfig config;
    WebPConfigInit(&config);
    if (lossless) {
        WebPConfigLosslessPreset(&config, 1);
        config.exact = 1;
    } else {
        config.quality = kQuality;
        config.method = 0;
    }
    WebPMemoryWriter writer;  // the usual libwebp output path: a growing malloc'ed buffer
    WebPMemoryWriterInit(&writer);
    for (auto _ : state) {
        WebPMemoryWriterClear(&writer);  // frees the previous frame's output
        WebPPicture pic;
        WebPPictureInit(&pic);
        pic.use_argb = lossless;
        pic.width = int(img.width);
        pic.height = int(img.height);
        pic.writer = WebPMemoryWrite;
        pic.custom_ptr = &writer;
        const bool ok = WebPPictureImportBGRX(&pic, img.pixels.data(), int(img.stride)) &&
                        WebPEncode(&config, &pic);
        WebPPictureFree(&pic);
        if (!ok) {
            state.SkipWithError("WebPEncode failed");
            break;
        }
        benchmark::DoNotOptimize(writer.mem);
    }
    if (writer.size) finish(state, DS_CODEC_WEBP, writer.mem, writer.size);
    WebPMemoryWriterClear(&writer);
}
void BM_webp_raw(benchmark::State& s) { webpRaw(s, false); }
void BM_webp_lossless_raw(benchmark::State& s) { webpRaw(s, true); }

void BM_avif_raw(benchmark::State& state) {
    const Image& img = desktopImage();
    avifImage* image = avifImageCreate(img.width, img.height, 8, AVIF_PIXEL_FORMAT_YUV420);
    avifRWData output = AVIF_DATA_EMPTY;
    const int q =
        static_cast<int>(std::lround((100.0 - kQuality) * AVIF_QUANTIZER_WORST_QUALITY / 100.0));
    for (auto _ : state) {
        avifRWDataFree(&output);
        avifRGBImage rgb;
        avifRGBImageSetDefaults(&rgb, image);
        rgb.format = AVIF_RGB_FORMAT_BGRA;
        rgb.ignoreAlpha = AVIF_TRUE;
        rgb.pixels = const_cast<uint8_t*>(img.pixels.data());
        rgb.rowBytes = img.stride;
        avifEncoder* enc = avifEncoderCreate();
        enc->maxThreads = 2;
        enc->speed = 8;
        enc->minQuantizer = enc->maxQuantizer = q;
        const bool ok = avifImageRGBToYUV(image, &rgb) == AVIF_RESULT_OK &&
                        avifEncoderWrite(enc, image, &output) == AVIF_RESULT_OK;
        avifEncoderDestroy(enc);
        if (!ok) {
            state.SkipWithError("avif encode failed");
            break;
        }
    }
    if (output.size) finish(state, DS_CODEC_AVIF, output.data, output.size);
    avifRWDataFree(&output);
    avifImageDestroy(image);
}

// Collects MP/s of every repetition and prints plugin/raw per codec after the normal output.
class SummaryReporter : public benchmark::ConsoleReporter {
public:
    // Colours only on a terminal, so redirected output stays plain text.
    SummaryReporter() : ConsoleReporter(isatty(fileno(stdout)) ? OO_Defaults : OO_Tabular) {}
    void ReportRuns(const std::vector<Run>& runs) override {
        for (const Run& r : runs) {
            // Sweeps (runs with arguments) are not part of the plugin/raw comparison.
            if (r.run_type != Run::RT_Iteration || r.error_occurred || !r.run_name.args.empty())
                continue;
            auto it = r.counters.find("MP/s");
            if (it == r.counters.end()) continue;
            mps_[r.run_name.function_name].push_back(it->second.value);
            bytes_[r.run_name.function_name] = r.counters.at("bytes_per_frame").value;
        }
        ConsoleReporter::ReportRuns(runs);
    }
    void printSummary() const {
        std::printf(
            "\nplugin vs raw (median MP/s over repetitions; ratio >= 0.95 is the target for "
            "jpeg)\n");
        std::printf("%-16s %12s %12s %8s %16s %16s\n", "codec", "plugin MP/s", "raw MP/s", "ratio",
                    "plugin B/frame", "raw B/frame");
        for (const auto& kv : mps_) {
            const std::string& name = kv.first;
            const auto pos = name.rfind("_plugin");
            if (pos == std::string::npos) continue;
            const std::string codec = name.substr(3, pos - 3);  // strip "BM_"
            auto raw = mps_.find("BM_" + codec + "_raw");
            if (raw == mps_.end()) {
                std::printf("%-16s %12.1f %12s %8s %16.0f %16s\n", codec.c_str(), median(kv.second),
                            "-", "-", bytes_.at(name), "-");
                continue;
            }
            const double p = median(kv.second), r = median(raw->second);
            std::printf("%-16s %12.1f %12.1f %8.3f %16.0f %16.0f\n", codec.c_str(), p, r,
                        r > 0 ? p / r : 0.0, bytes_.at(name), bytes_.at(raw->first));
        }
    }

private:
    static double median(std::vector<double> v) {
        std::sort(v.begin(), v.end());
        const size_t n = v.size();
        return n == 0 ? 0 : n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
    }
    std::map<std::string, std::vector<double>> mps_;
    std::map<std::string, double> bytes_;
};

}  // namespace

BENCHMARK(BM_jpeg_plugin)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_jpeg_raw)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_webp_plugin)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_webp_raw)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_webp_lossless_plugin)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_webp_lossless_raw)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_webp_auto_plugin)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_avif_plugin)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_avif_raw)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_jpeg_444_plugin)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_webp_method_plugin)->DenseRange(0, 6, 2)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_avif_speed_plugin)->DenseRange(7, 10, 1)->Unit(benchmark::kMillisecond)->UseRealTime();

int main(int argc, char** argv) {
    try {
        desktopImage();  // fail early and clearly when the picture is missing
    } catch (const std::exception& e) {
        std::fprintf(stderr, "ds_bench_encoders: %s\n", e.what());
        return 1;
    }
    // The AV1 encoders this libavif has, at the plugin's defaults (speed 8, 2 threads).
    for (const char* codec : {"aom", "rav1e", "svt"}) {
        if (!avifCodecName(avifCodecChoiceFromName(codec), AVIF_CODEC_FLAG_CAN_ENCODE)) continue;
        benchmark::RegisterBenchmark((std::string("BM_avif_") + codec + "_plugin").c_str(),
                                     [codec](benchmark::State& s) {
                                         runPlugin(s, "avif", DS_CODEC_AVIF, {{"codec", codec}});
                                     })
            ->Unit(benchmark::kMillisecond)
            ->UseRealTime();
    }
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    SummaryReporter reporter;
    benchmark::RunSpecifiedBenchmarks(&reporter);
    reporter.printSummary();
    benchmark::Shutdown();
    return 0;
}
