// Test helper program: a PipeWire Video/Source that changes its size while it runs, which
// GStreamer's pipewiresink cannot do from a command line. It drives itself (a 30 fps timer),
// fills MemFd buffers (allocated by PipeWire) with one BGRx colour, and after `switch_ms` renegotiates to the second
// size by offering a new EnumFormat.
// Usage: pw_resizing_source <node name> <w1> <h1> <w2> <h2> <switch_ms>
#include <pipewire/pipewire.h>
#include <spa/param/video/format-utils.h>
#include <spa/pod/builder.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace {

struct Source {
    pw_main_loop* loop = nullptr;
    pw_stream* stream = nullptr;
    spa_source* frameTimer = nullptr;
    uint32_t width = 0, height = 0, nextWidth = 0, nextHeight = 0;
    spa_hook listener{};
};

const spa_pod* formatFor(spa_pod_builder* b, uint32_t width, uint32_t height) {
    spa_rectangle size{width, height};
    spa_fraction rate{30, 1};
    return static_cast<const spa_pod*>(spa_pod_builder_add_object(
        b, SPA_TYPE_OBJECT_Format, SPA_PARAM_EnumFormat, SPA_FORMAT_mediaType,
        SPA_POD_Id(SPA_MEDIA_TYPE_video), SPA_FORMAT_mediaSubtype,
        SPA_POD_Id(SPA_MEDIA_SUBTYPE_raw), SPA_FORMAT_VIDEO_format,
        SPA_POD_Id(SPA_VIDEO_FORMAT_BGRx), SPA_FORMAT_VIDEO_size, SPA_POD_Rectangle(&size),
        SPA_FORMAT_VIDEO_framerate, SPA_POD_Fraction(&rate)));
}

void onProcess(void* data) {
    auto* s = static_cast<Source*>(data);
    pw_buffer* b = pw_stream_dequeue_buffer(s->stream);
    if (!b) return;
    spa_data& d = b->buffer->datas[0];
    const uint32_t stride = s->width * 4;
    if (d.data && d.maxsize >= stride * s->height) {
        auto* p = static_cast<uint8_t*>(d.data);
        for (uint32_t i = 0; i < s->width * s->height; ++i)
            p[i * 4] = 0x40, p[i * 4 + 1] = 0x80, p[i * 4 + 2] = 0xc0;
        d.chunk->offset = 0;
        d.chunk->stride = static_cast<int32_t>(stride);
        d.chunk->size = stride * s->height;
    }
    pw_stream_queue_buffer(s->stream, b);
}

void onParamChanged(void* data, uint32_t id, const spa_pod* param) {
    auto* s = static_cast<Source*>(data);
    if (!param || id != SPA_PARAM_Format) return;
    spa_video_info_raw raw{};
    if (spa_format_video_raw_parse(param, &raw) < 0) return;
    s->width = raw.size.width;
    s->height = raw.size.height;
    uint8_t buffer[512];
    spa_pod_builder b = SPA_POD_BUILDER_INIT(buffer, sizeof buffer);
    const int32_t stride = static_cast<int32_t>(s->width * 4);
    const spa_pod* params[1] = {static_cast<const spa_pod*>(spa_pod_builder_add_object(
        &b, SPA_TYPE_OBJECT_ParamBuffers, SPA_PARAM_Buffers, SPA_PARAM_BUFFERS_buffers,
        SPA_POD_CHOICE_RANGE_Int(4, 2, 8), SPA_PARAM_BUFFERS_blocks, SPA_POD_Int(1),
        SPA_PARAM_BUFFERS_size, SPA_POD_Int(stride * static_cast<int32_t>(s->height)),
        SPA_PARAM_BUFFERS_stride, SPA_POD_Int(stride), SPA_PARAM_BUFFERS_dataType,
        SPA_POD_CHOICE_FLAGS_Int(1 << SPA_DATA_MemFd)))};
    pw_stream_update_params(s->stream, params, 1);
}

void onFrameTimer(void* data, uint64_t) {
    auto* s = static_cast<Source*>(data);
    pw_stream_trigger_process(s->stream);
}

void onSwitchTimer(void* data, uint64_t) {
    auto* s = static_cast<Source*>(data);
    uint8_t buffer[512];
    spa_pod_builder b = SPA_POD_BUILDER_INIT(buffer, sizeof buffer);
    const spa_pod* params[1] = {formatFor(&b, s->nextWidth, s->nextHeight)};
    pw_stream_update_params(s->stream, params, 1);
    std::fprintf(stderr, "pw_resizing_source: now offering %ux%u\n", s->nextWidth, s->nextHeight);
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 7) {
        std::fprintf(stderr, "usage: %s <node name> <w1> <h1> <w2> <h2> <switch_ms>\n", argv[0]);
        return 2;
    }
    pw_init(&argc, &argv);
    Source s;
    const uint32_t w1 = static_cast<uint32_t>(std::atoi(argv[2])),
                   h1 = static_cast<uint32_t>(std::atoi(argv[3]));
    s.nextWidth = static_cast<uint32_t>(std::atoi(argv[4]));
    s.nextHeight = static_cast<uint32_t>(std::atoi(argv[5]));
    const long switchMs = std::atol(argv[6]);
    s.loop = pw_main_loop_new(nullptr);
    pw_loop* loop = pw_main_loop_get_loop(s.loop);
    pw_stream_events events{};
    events.version = PW_VERSION_STREAM_EVENTS;
    events.process = &onProcess;
    events.param_changed = &onParamChanged;
    s.stream =
        pw_stream_new_simple(loop, "pw_resizing_source",
                             pw_properties_new(PW_KEY_MEDIA_CLASS, "Video/Source", PW_KEY_NODE_NAME,
                                               argv[1], PW_KEY_MEDIA_TYPE, "Video", nullptr),
                             &events, &s);
    uint8_t buffer[512];
    spa_pod_builder b = SPA_POD_BUILDER_INIT(buffer, sizeof buffer);
    const spa_pod* params[1] = {formatFor(&b, w1, h1)};
    if (pw_stream_connect(
            s.stream, PW_DIRECTION_OUTPUT, PW_ID_ANY,
            static_cast<pw_stream_flags>(PW_STREAM_FLAG_DRIVER | PW_STREAM_FLAG_MAP_BUFFERS),
            params, 1) < 0) {
        std::fprintf(stderr, "pw_resizing_source: cannot connect\n");
        return 1;
    }
    timespec frame{0, 33 * 1000 * 1000}, sw{switchMs / 1000, (switchMs % 1000) * 1000 * 1000},
        none{0, 0};
    s.frameTimer = pw_loop_add_timer(loop, &onFrameTimer, &s);
    pw_loop_update_timer(loop, s.frameTimer, &frame, &frame, false);
    spa_source* switchTimer = pw_loop_add_timer(loop, &onSwitchTimer, &s);
    pw_loop_update_timer(loop, switchTimer, &sw, &none, false);
    pw_main_loop_run(s.loop);  // until killed
    pw_stream_destroy(s.stream);
    pw_main_loop_destroy(s.loop);
    return 0;
}
