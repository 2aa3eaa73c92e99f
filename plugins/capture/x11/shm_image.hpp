// One MIT-SHM image: a System V shared memory segment attached by both this process and the X
// server, wrapped in an XImage that XShmGetImage fills. RAII: the destructor detaches both sides.
//
// The segment is marked for removal (IPC_RMID) as soon as the server has attached it, so the
// kernel frees it when the last side detaches, even if this process is killed: no segment can
// outlive the capture (docs/capture.md).
#pragma once

#include <X11/Xlib.h>
#include <X11/extensions/XShm.h>

#include <cstdint>

namespace ds_x11 {

class ShmImage {
public:
    // Throws deskstream::Error when the segment cannot be created or attached.
    ShmImage(Display* display, Visual* visual, int depth, uint32_t width, uint32_t height);
    ~ShmImage();
    ShmImage(const ShmImage&) = delete;
    ShmImage& operator=(const ShmImage&) = delete;

    XImage* image() const { return image_; }
    const uint8_t* data() const { return reinterpret_cast<const uint8_t*>(image_->data); }
    uint8_t* data() { return reinterpret_cast<uint8_t*>(image_->data); }
    uint32_t stride() const { return static_cast<uint32_t>(image_->bytes_per_line); }
    // The X connection is gone: the destructor then only detaches this process's side.
    void abandon() { attached_ = false; }

private:
    Display* display_;
    XImage* image_ = nullptr;
    XShmSegmentInfo info_{};
    bool attached_ = false;
};

// Xlib reports protocol errors through one process-wide handler whose default exits the
// process. installErrorTrap() replaces it (once) by one that records the error code;
// takeError() returns and clears the last recorded code (0: none). It also replaces the I/O
// error handler (whose default exits too) by one that returns, so that a lost connection
// reaches the per-display exit handler (XSetIOErrorExitHandler) of the capture.
void installErrorTrap();
int takeError();

}  // namespace ds_x11
