// One PipeWire video stream consumed by the pipewire capture plugin: the connection to the
// daemon (its own thread loop), finding the node, negotiating a 32-bit RGB format, mapping the
// buffers and handing the newest picture to the grabbing thread.
//
// Threading: PipeWire calls back on the stream's loop thread; those callbacks only copy the
// picture into `pending_` and set flags under `mutex_`. The grabbing thread waits on `changed_`
// with a deadline and never holds the PipeWire loop lock while it waits, so a stalled or
// vanished source can never block it beyond its timeout.
#pragma once

#include "deskstream/plugin.h"

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

struct pw_thread_loop;
struct pw_context;
struct pw_core;
struct pw_registry;
struct pw_stream;

namespace ds_pipewire {

// A picture in the stream's negotiated format, rows packed (stride = width * 4).
struct Picture {
    uint32_t width = 0, height = 0;
    ds_pixel_format format = DS_PIXEL_BGRX;
    std::vector<uint8_t> pixels;
    uint64_t sequence = 0;
};

// What the grabbing thread learns from one wait.
enum class WaitResult { Frame, Timeout, Reinit };

class Stream {
public:
    // Connects to the daemon: `remoteFd` >= 0 is a portal's PipeWire remote (the stream takes
    // it over), otherwise the default socket ($PIPEWIRE_REMOTE or pipewire-0 in
    // $XDG_RUNTIME_DIR). `node` is an id, a name or an object.serial. Throws deskstream::Error.
    Stream(const std::string& node, int remoteFd, std::chrono::milliseconds connectTimeout);
    ~Stream();
    Stream(const Stream&) = delete;
    Stream& operator=(const Stream&) = delete;

    // Just looks the node up and disconnects (for probe()). Throws deskstream::Error.
    static void checkNodeExists(const std::string& node, std::chrono::milliseconds timeout);

    // Waits up to `timeout` for a picture newer than the last one taken, and swaps it into
    // `out` (whose old buffer is recycled). Throws deskstream::Error(DS_ERR_IO) once the source
    // has gone away or the daemon connection broke.
    WaitResult take(std::chrono::milliseconds timeout, Picture& out);

    std::string nodeName() const { return nodeName_; }
    uint32_t nodeId() const { return nodeId_; }
    // Negotiated size (0 x 0 until the format is agreed).
    void size(uint32_t& width, uint32_t& height) const;

private:
    Stream() = default;  // for checkNodeExists
    struct Callbacks;
    friend struct Callbacks;
    void connectDaemon(int remoteFd);
    void resolveNode(const std::string& node, std::chrono::milliseconds timeout);
    void connectStream();
    void fail(const std::string& message);  // loop thread: the source is gone
    void copyBuffer();                      // loop thread: process callback
    void disconnect() noexcept;

    pw_thread_loop* loop_ = nullptr;
    pw_context* context_ = nullptr;
    pw_core* core_ = nullptr;
    pw_registry* registry_ = nullptr;
    pw_stream* stream_ = nullptr;
    struct Listeners;
    Listeners* listeners_ = nullptr;

    // Written on the loop thread during resolveNode, read after it.
    std::string wanted_;
    int matchRank_ = 0;  // 0: no node matched yet; 3 id, 2 serial, 1 name
    uint32_t nodeId_ = 0;
    std::string nodeName_, nodeSerial_;
    std::vector<std::string> videoNodes_;  // names seen, for the "not found" message

    mutable std::mutex mutex_;
    std::condition_variable changed_;
    int syncSeq_ = -1;
    bool synced_ = false;
    bool formatReady_ = false;
    bool reinit_ = false;
    std::string gone_;  // non-empty: why the stream is unusable
    uint32_t width_ = 0, height_ = 0;
    ds_pixel_format format_ = DS_PIXEL_BGRX;
    Picture pending_;  // newest picture, filled by the loop thread
    bool pendingFresh_ = false;
    uint64_t sequence_ = 0;
};

}  // namespace ds_pipewire
