// ds_make_jpeg: encodes a PNG as a baseline JPEG (TurboJPEG, 4:2:0), to record the frame that
// the fan-out benchmark replays.
//
//   ds_make_jpeg in.png out.jpg [quality=75]
#include <png.h>
#include <turbojpeg.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

int main(int argc, char** argv) {
    if (argc < 3 || argc > 4) {
        std::fprintf(stderr, "usage: ds_make_jpeg in.png out.jpg [quality 1..100, default 75]\n");
        return 2;
    }
    int quality = argc == 4 ? std::atoi(argv[3]) : 75;
    if (quality < 1 || quality > 100) {
        std::fprintf(stderr, "ds_make_jpeg: quality must be 1..100, got '%s'\n", argv[3]);
        return 2;
    }
    png_image img;
    std::memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_file(&img, argv[1])) {
        std::fprintf(stderr, "ds_make_jpeg: cannot read %s: %s\n", argv[1], img.message);
        return 1;
    }
    img.format = PNG_FORMAT_RGB;
    std::vector<unsigned char> rgb(PNG_IMAGE_SIZE(img));
    if (!png_image_finish_read(&img, nullptr, rgb.data(), 0, nullptr)) {
        std::fprintf(stderr, "ds_make_jpeg: cannot decode %s: %s\n", argv[1], img.message);
        return 1;
    }
    tjhandle tj = tjInitCompress();
    unsigned char* out = nullptr;
    unsigned long outSize = 0;
    if (!tj ||
        tjCompress2(tj, rgb.data(), static_cast<int>(img.width), 0, static_cast<int>(img.height),
                    TJPF_RGB, &out, &outSize, TJSAMP_420, quality, TJFLAG_FASTDCT) != 0) {
        std::fprintf(stderr, "ds_make_jpeg: JPEG encoding failed: %s\n", tjGetErrorStr2(tj));
        return 1;
    }
    FILE* f = std::fopen(argv[2], "wb");
    const bool ok = f && std::fwrite(out, 1, outSize, f) == outSize && std::fclose(f) == 0;
    tjFree(out);
    tjDestroy(tj);
    if (!ok) {
        std::fprintf(stderr, "ds_make_jpeg: cannot write %s\n", argv[2]);
        return 1;
    }
    std::printf("%s: %ux%u quality %d, %lu bytes\n", argv[2], img.width, img.height, quality,
                outSize);
    return 0;
}
