// PipeWire side of the pipewire capture plugin: daemon connection, node lookup, format
// negotiation and buffer mapping (see pipewire_stream.hpp for the threading rules).
#include "pipewire_stream.hpp"

#include "deskstream/plugin.hpp"

#include <pipewire/pipewire.h>
#include <spa/param/video/format-utils.h>
#include <spa/pod/builder.h>

#include <linux/dma-buf.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace ds_pipewire {

using deskstream::Error;

namespace {

bool toPixelFormat(uint32_t spaFormat, ds_pixel_format& out) {
    switch (spaFormat) {
        case SPA_VIDEO_FORMAT_BGRx:
            out = DS_PIXEL_BGRX;
            return true;
        case SPA_VIDEO_FORMAT_BGRA:
            out = DS_PIXEL_BGRA;
            return true;
        case SPA_VIDEO_FORMAT_RGBx:
            out = DS_PIXEL_RGBX;
            return true;
        case SPA_VIDEO_FORMAT_RGBA:
            out = DS_PIXEL_RGBA;
            return true;
        default:
            return false;
    }
}

const char* lookup(const spa_dict* props, const char* key) {
    const char* v = props ? spa_dict_lookup(props, key) : nullptr;
    return v ? v : "";
}

// pw_init() may be called more than once; the library is never unloaded (plugin.h LIFETIME).
void initOnce() {
    static std::once_flag once;
    std::call_once(once, [] { pw_init(nullptr, nullptr); });
}

}  // namespace

struct Stream::Listeners {
    spa_hook core{}, registry{}, stream{};
    pw_core_events coreEvents{};
    pw_registry_events registryEvents{};
    pw_stream_events streamEvents{};
};

// Static trampolines from PipeWire's C callbacks (loop thread) into the Stream.
struct Stream::Callbacks {
    static void coreDone(void* data, uint32_t id, int seq) {
        auto* s = static_cast<Stream*>(data);
        std::lock_guard<std::mutex> lock(s->mutex_);
        if (id == PW_ID_CORE && seq == s->syncSeq_) {
            s->synced_ = true;
            s->changed_.notify_all();
        }
    }
    static void coreError(void* data, uint32_t id, int, int res, const char* message) {
        auto* s = static_cast<Stream*>(data);
        if (id == PW_ID_CORE)
            s->fail(std::string("PipeWire daemon connection failed: ") + (message ? message : "") +
                    " (" + std::strerror(-res) + ")");
    }
    static void global(void* data, uint32_t id, uint32_t, const char* type, uint32_t,
                       const spa_dict* props) {
        auto* s = static_cast<Stream*>(data);
        if (std::strcmp(type, PW_TYPE_INTERFACE_Node) != 0) return;
        std::string name = lookup(props, PW_KEY_NODE_NAME),
                    serial = lookup(props, PW_KEY_OBJECT_SERIAL);
        std::string mediaClass = lookup(props, PW_KEY_MEDIA_CLASS);
        std::lock_guard<std::mutex> lock(s->mutex_);
        if (mediaClass.find("Video") != std::string::npos)
            s->videoNodes_.push_back((name.empty() ? "(unnamed)" : name) + " (id " +
                                     std::to_string(id) + ")");
        // An id beats a serial beats a name when one value matches several nodes.
        int rank = s->wanted_ == std::to_string(id) ? 3
                   : s->wanted_ == serial           ? 2
                   : s->wanted_ == name             ? 1
                                                    : 0;
        if (rank > s->matchRank_) {
            s->matchRank_ = rank;
            s->nodeId_ = id;
            s->nodeName_ = name;
            s->nodeSerial_ = serial;
        }
    }
    static void globalRemove(void* data, uint32_t id) {
        auto* s = static_cast<Stream*>(data);
        bool ours;
        {
            std::lock_guard<std::mutex> lock(s->mutex_);
            ours = s->matchRank_ > 0 && id == s->nodeId_;
        }
        if (ours)
            s->fail("PipeWire node '" + s->nodeName_ + "' (id " + std::to_string(id) +
                    ") went away");
    }
    static void stateChanged(void* data, pw_stream_state old, pw_stream_state state,
                             const char* error) {
        auto* s = static_cast<Stream*>(data);
        if (state == PW_STREAM_STATE_ERROR)
            s->fail(std::string("PipeWire stream error: ") + (error ? error : "unknown"));
        else if (state == PW_STREAM_STATE_UNCONNECTED && old != PW_STREAM_STATE_UNCONNECTED)
            s->fail("PipeWire stream of node '" + s->nodeName_ + "' was disconnected");
    }
    static void paramChanged(void* data, uint32_t id, const spa_pod* param) {
        auto* s = static_cast<Stream*>(data);
        if (!param || id != SPA_PARAM_Format) return;
        uint32_t mediaType = 0, mediaSubtype = 0;
        if (spa_format_parse(param, &mediaType, &mediaSubtype) < 0 ||
            mediaType != SPA_MEDIA_TYPE_video || mediaSubtype != SPA_MEDIA_SUBTYPE_raw)
            return;
        spa_video_info_raw raw{};
        ds_pixel_format format;
        if (spa_format_video_raw_parse(param, &raw) < 0 || !toPixelFormat(raw.format, format) ||
            raw.size.width == 0 || raw.size.height == 0) {
            s->fail("PipeWire node '" + s->nodeName_ + "' offered an unusable video format");
            return;
        }
        {
            std::lock_guard<std::mutex> lock(s->mutex_);
            if (s->formatReady_ && (raw.size.width != s->width_ || raw.size.height != s->height_))
                s->reinit_ = true;
            s->width_ = raw.size.width;
            s->height_ = raw.size.height;
            s->format_ = format;
            s->formatReady_ = true;
            s->changed_.notify_all();
        }
        // Buffers: one plane of packed 32-bit pixels, in shared memory or a mappable DMA-BUF.
        const int32_t stride = static_cast<int32_t>(raw.size.width * 4);
        uint8_t buffer[512];
        spa_pod_builder b = SPA_POD_BUILDER_INIT(buffer, sizeof buffer);
        const spa_pod* params[1];
        params[0] = static_cast<const spa_pod*>(spa_pod_builder_add_object(
            &b, SPA_TYPE_OBJECT_ParamBuffers, SPA_PARAM_Buffers, SPA_PARAM_BUFFERS_buffers,
            SPA_POD_CHOICE_RANGE_Int(4, 2, 16), SPA_PARAM_BUFFERS_blocks, SPA_POD_Int(1),
            SPA_PARAM_BUFFERS_size, SPA_POD_Int(stride * static_cast<int32_t>(raw.size.height)),
            SPA_PARAM_BUFFERS_stride, SPA_POD_Int(stride), SPA_PARAM_BUFFERS_dataType,
            SPA_POD_CHOICE_FLAGS_Int((1 << SPA_DATA_MemPtr) | (1 << SPA_DATA_MemFd) |
                                     (1 << SPA_DATA_DmaBuf))));
        pw_stream_update_params(s->stream_, params, 1);
    }
    static void process(void* data) { static_cast<Stream*>(data)->copyBuffer(); }
};

Stream::Stream(const std::string& node, int remoteFd, std::chrono::milliseconds connectTimeout) {
    try {
        listeners_ = new Listeners();
        connectDaemon(remoteFd);
        resolveNode(node, connectTimeout);
        connectStream();
        std::unique_lock<std::mutex> lock(mutex_);
        changed_.wait_for(lock, connectTimeout, [&] { return formatReady_ || !gone_.empty(); });
        if (!gone_.empty()) throw Error(DS_ERR_IO, gone_);
        if (!formatReady_)
            throw Error(DS_ERR_UNSUPPORTED,
                        "PipeWire node '" + nodeName_ + "' (id " + std::to_string(nodeId_) +
                            ") did not agree on a BGRx/BGRA/RGBx/RGBA video format within " +
                            std::to_string(connectTimeout.count()) + " ms");
    } catch (...) {
        disconnect();
        throw;
    }
}

Stream::~Stream() { disconnect(); }

void Stream::checkNodeExists(const std::string& node, std::chrono::milliseconds timeout) {
    Stream probe;
    try {
        probe.listeners_ = new Listeners();
        probe.connectDaemon(-1);
        probe.resolveNode(node, timeout);
    } catch (...) {
        probe.disconnect();
        throw;
    }
    probe.disconnect();
}

void Stream::connectDaemon(int remoteFd) {
    initOnce();
    // The portal's fd is ours until pw_context_connect_fd takes it (it closes it on error too).
    auto giveUp = [remoteFd](const char* what) {
        if (remoteFd >= 0) close(remoteFd);
        throw Error(DS_ERR_INTERNAL, what);
    };
    loop_ = pw_thread_loop_new("ds-pipewire", nullptr);
    if (!loop_) giveUp("cannot create a PipeWire thread loop");
    context_ = pw_context_new(pw_thread_loop_get_loop(loop_), nullptr, 0);
    if (!context_) giveUp("cannot create a PipeWire context");
    if (pw_thread_loop_start(loop_) < 0) giveUp("cannot start the PipeWire thread loop");
    pw_thread_loop_lock(loop_);
    core_ = remoteFd >= 0 ? pw_context_connect_fd(context_, remoteFd, nullptr, 0)
                          : pw_context_connect(context_, nullptr, 0);
    int err = errno;
    if (core_) {
        listeners_->coreEvents.version = PW_VERSION_CORE_EVENTS;
        listeners_->coreEvents.done = &Callbacks::coreDone;
        listeners_->coreEvents.error = &Callbacks::coreError;
        pw_core_add_listener(core_, &listeners_->core, &listeners_->coreEvents, this);
    }
    pw_thread_loop_unlock(loop_);
    if (!core_) {
        const char* dir = std::getenv("XDG_RUNTIME_DIR");
        throw Error(DS_ERR_UNSUPPORTED, std::string("cannot connect to the PipeWire daemon (") +
                                            std::strerror(err) +
                                            "; XDG_RUNTIME_DIR=" + (dir ? dir : "(unset)") + ")");
    }
}

void Stream::resolveNode(const std::string& node, std::chrono::milliseconds timeout) {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        wanted_ = node;
    }
    pw_thread_loop_lock(loop_);
    registry_ = pw_core_get_registry(core_, PW_VERSION_REGISTRY, 0);
    if (registry_) {
        listeners_->registryEvents.version = PW_VERSION_REGISTRY_EVENTS;
        listeners_->registryEvents.global = &Callbacks::global;
        listeners_->registryEvents.global_remove = &Callbacks::globalRemove;
        pw_registry_add_listener(registry_, &listeners_->registry, &listeners_->registryEvents,
                                 this);
        std::lock_guard<std::mutex> lock(mutex_);
        syncSeq_ = pw_core_sync(core_, PW_ID_CORE, 0);  // done() arrives after every global
    }
    pw_thread_loop_unlock(loop_);
    if (!registry_) throw Error(DS_ERR_INTERNAL, "cannot get the PipeWire registry");
    std::unique_lock<std::mutex> lock(mutex_);
    changed_.wait_for(lock, timeout, [&] { return synced_ || !gone_.empty(); });
    if (!gone_.empty()) throw Error(DS_ERR_IO, gone_);
    if (!synced_)
        throw Error(DS_ERR_IO, "the PipeWire daemon did not answer within " +
                                   std::to_string(timeout.count()) + " ms");
    if (matchRank_ == 0) {
        std::string seen;
        for (const auto& n : videoNodes_) seen += (seen.empty() ? "" : ", ") + n;
        throw Error(DS_ERR_NOT_FOUND,
                    "[capture.pipewire] node = '" + node +
                        "': no PipeWire node has this id, name or serial (video nodes: " +
                        (seen.empty() ? "none" : seen) + ")");
    }
}

void Stream::connectStream() {
    pw_thread_loop_lock(loop_);
    pw_properties* props = pw_properties_new(
        PW_KEY_MEDIA_TYPE, "Video", PW_KEY_MEDIA_CATEGORY, "Capture", PW_KEY_MEDIA_ROLE, "Screen",
        PW_KEY_TARGET_OBJECT, nodeSerial_.empty() ? nodeName_.c_str() : nodeSerial_.c_str(),
        PW_KEY_NODE_DONT_RECONNECT, "true", nullptr);
    stream_ = pw_stream_new(core_, "deskstream", props);  // takes props
    int res = -ENOMEM;
    if (stream_) {
        listeners_->streamEvents.version = PW_VERSION_STREAM_EVENTS;
        listeners_->streamEvents.state_changed = &Callbacks::stateChanged;
        listeners_->streamEvents.param_changed = &Callbacks::paramChanged;
        listeners_->streamEvents.process = &Callbacks::process;
        pw_stream_add_listener(stream_, &listeners_->stream, &listeners_->streamEvents, this);

        // The four packed 32-bit formats the encoders read, any size, any rate.
        spa_rectangle defSize{1920, 1080}, minSize{1, 1}, maxSize{16384, 16384};
        spa_fraction defRate{30, 1}, minRate{0, 1}, maxRate{1000, 1};
        uint8_t buffer[1024];
        spa_pod_builder b = SPA_POD_BUILDER_INIT(buffer, sizeof buffer);
        const spa_pod* params[1];
        params[0] = static_cast<const spa_pod*>(spa_pod_builder_add_object(
            &b, SPA_TYPE_OBJECT_Format, SPA_PARAM_EnumFormat, SPA_FORMAT_mediaType,
            SPA_POD_Id(SPA_MEDIA_TYPE_video), SPA_FORMAT_mediaSubtype,
            SPA_POD_Id(SPA_MEDIA_SUBTYPE_raw), SPA_FORMAT_VIDEO_format,
            SPA_POD_CHOICE_ENUM_Id(5, SPA_VIDEO_FORMAT_BGRx, SPA_VIDEO_FORMAT_BGRx,
                                   SPA_VIDEO_FORMAT_BGRA, SPA_VIDEO_FORMAT_RGBx,
                                   SPA_VIDEO_FORMAT_RGBA),
            SPA_FORMAT_VIDEO_size, SPA_POD_CHOICE_RANGE_Rectangle(&defSize, &minSize, &maxSize),
            SPA_FORMAT_VIDEO_framerate,
            SPA_POD_CHOICE_RANGE_Fraction(&defRate, &minRate, &maxRate)));
        res = pw_stream_connect(
            stream_, PW_DIRECTION_INPUT, PW_ID_ANY,
            static_cast<pw_stream_flags>(PW_STREAM_FLAG_AUTOCONNECT | PW_STREAM_FLAG_MAP_BUFFERS),
            params, 1);
    }
    pw_thread_loop_unlock(loop_);
    if (res < 0)
        throw Error(DS_ERR_IO, "cannot connect a PipeWire stream to node '" + nodeName_ +
                                   "': " + std::strerror(-res));
}

void Stream::fail(const std::string& message) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (gone_.empty()) gone_ = message;
    changed_.notify_all();
}

void Stream::copyBuffer() {
    pw_buffer* b = pw_stream_dequeue_buffer(stream_);
    if (!b) return;
    spa_buffer* buf = b->buffer;
    if (buf->n_datas < 1 || !buf->datas[0].chunk) {
        pw_stream_queue_buffer(stream_, b);
        return;
    }
    const spa_data& d = buf->datas[0];
    const spa_chunk& chunk = *d.chunk;
    uint32_t width, height;
    ds_pixel_format format;
    {
        std::lock_guard<std::mutex> lock(mutex_);
        width = width_, height = height_, format = format_;
    }
    const uint32_t stride = chunk.stride > 0 ? static_cast<uint32_t>(chunk.stride) : width * 4;
    const uint64_t needed =
        uint64_t{chunk.offset} + uint64_t{stride} * (height - 1) + uint64_t{width} * 4;
    if (width == 0 || chunk.size == 0 || (chunk.flags & SPA_CHUNK_FLAG_CORRUPTED) ||
        stride < width * 4 || needed > d.maxsize) {
        pw_stream_queue_buffer(stream_, b);
        return;
    }

    // SHM/MemFd buffers are mapped by PipeWire (PW_STREAM_FLAG_MAP_BUFFERS); a DMA-BUF is mapped
    // here, bracketed by DMA_BUF_IOCTL_SYNC so the CPU sees what the GPU wrote.
    const uint8_t* base = static_cast<const uint8_t*>(d.data);
    void* mapped = MAP_FAILED;
    size_t mappedSize = 0;
    if (!base && d.type == SPA_DATA_DmaBuf && d.fd >= 0) {
        mappedSize = d.maxsize + d.mapoffset;
        mapped = mmap(nullptr, mappedSize, PROT_READ, MAP_SHARED, static_cast<int>(d.fd), 0);
        if (mapped != MAP_FAILED) {
            dma_buf_sync sync{DMA_BUF_SYNC_START | DMA_BUF_SYNC_READ};
            ioctl(static_cast<int>(d.fd), DMA_BUF_IOCTL_SYNC, &sync);
            base = static_cast<const uint8_t*>(mapped) + d.mapoffset;
        }
    }
    if (base) {
        std::lock_guard<std::mutex> lock(mutex_);
        pending_.width = width;
        pending_.height = height;
        pending_.format = format;
        pending_.pixels.resize(size_t{width} * height * 4);
        const uint8_t* src = base + chunk.offset;
        for (uint32_t y = 0; y < height; ++y)
            std::memcpy(pending_.pixels.data() + size_t{y} * width * 4, src + size_t{y} * stride,
                        size_t{width} * 4);
        pending_.sequence = ++sequence_;
        pendingFresh_ = true;
        changed_.notify_all();
    }
    if (mapped != MAP_FAILED) {
        dma_buf_sync sync{DMA_BUF_SYNC_END | DMA_BUF_SYNC_READ};
        ioctl(static_cast<int>(d.fd), DMA_BUF_IOCTL_SYNC, &sync);
        munmap(mapped, mappedSize);
    }
    pw_stream_queue_buffer(stream_, b);
}

WaitResult Stream::take(std::chrono::milliseconds timeout, Picture& out) {
    std::unique_lock<std::mutex> lock(mutex_);
    changed_.wait_for(lock, timeout, [&] { return pendingFresh_ || reinit_ || !gone_.empty(); });
    if (!gone_.empty()) throw Error(DS_ERR_IO, gone_);
    if (reinit_) {
        reinit_ = false;
        if (pending_.width != width_ || pending_.height != height_) pendingFresh_ = false;
        return WaitResult::Reinit;
    }
    if (!pendingFresh_) return WaitResult::Timeout;
    std::swap(out.pixels, pending_.pixels);  // out's old buffer is reused for the next picture
    out.width = pending_.width;
    out.height = pending_.height;
    out.format = pending_.format;
    out.sequence = pending_.sequence;
    pendingFresh_ = false;
    return WaitResult::Frame;
}

void Stream::size(uint32_t& width, uint32_t& height) const {
    std::lock_guard<std::mutex> lock(mutex_);
    width = width_;
    height = height_;
}

void Stream::disconnect() noexcept {
    if (loop_) pw_thread_loop_stop(loop_);  // no callback runs after this
    if (stream_) pw_stream_destroy(stream_);
    if (registry_) pw_proxy_destroy(reinterpret_cast<pw_proxy*>(registry_));
    if (core_) pw_core_disconnect(core_);
    if (context_) pw_context_destroy(context_);
    if (loop_) pw_thread_loop_destroy(loop_);
    stream_ = nullptr;
    registry_ = nullptr;
    core_ = nullptr;
    context_ = nullptr;
    loop_ = nullptr;
    delete listeners_;
    listeners_ = nullptr;
}

}  // namespace ds_pipewire
