// MIT-SHM image lifetime (see shm_image.hpp) and the Xlib error trap.
#include "shm_image.hpp"

#include "deskstream/plugin.hpp"

#include <X11/Xutil.h>
#include <sys/ipc.h>
#include <sys/shm.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <string>

namespace ds_x11 {
namespace {

std::atomic<int> g_lastError{0};

int recordError(Display*, XErrorEvent* event) {
    g_lastError = event->error_code;
    return 0;
}

// Returns to Xlib, which then calls the display's exit handler: the capture's own (it marks the
// connection lost) or, for other connections of the process, Xlib's default, which exits.
int ignoreIOError(Display*) { return 0; }

}  // namespace

void installErrorTrap() {
    static std::once_flag once;
    std::call_once(once, [] {
        XSetErrorHandler(&recordError);
        XSetIOErrorHandler(&ignoreIOError);
    });
}

int takeError() { return g_lastError.exchange(0); }

ShmImage::ShmImage(Display* display, Visual* visual, int depth, uint32_t width, uint32_t height)
    : display_(display) {
    image_ = XShmCreateImage(display, visual, static_cast<unsigned>(depth), ZPixmap, nullptr,
                             &info_, width, height);
    if (!image_) throw deskstream::Error(DS_ERR_NO_MEMORY, "XShmCreateImage failed");
    const size_t bytes = static_cast<size_t>(image_->bytes_per_line) * height;
    info_.shmid = shmget(IPC_PRIVATE, bytes, IPC_CREAT | 0600);
    if (info_.shmid < 0) {
        const std::string reason = std::strerror(errno);
        XDestroyImage(image_);
        throw deskstream::Error(DS_ERR_NO_MEMORY,
                                "shmget of " + std::to_string(bytes) + " bytes failed: " + reason);
    }
    void* addr = shmat(info_.shmid, nullptr, 0);
    if (addr == reinterpret_cast<void*>(-1)) {
        const std::string reason = std::strerror(errno);
        shmctl(info_.shmid, IPC_RMID, nullptr);
        XDestroyImage(image_);
        throw deskstream::Error(DS_ERR_NO_MEMORY, "shmat failed: " + reason);
    }
    info_.shmaddr = image_->data = static_cast<char*>(addr);
    info_.readOnly = False;
    takeError();
    const Bool ok = XShmAttach(display, &info_);
    XSync(display, False);  // the server has attached (or refused) before the segment is marked
    const int error = takeError();
    shmctl(info_.shmid, IPC_RMID, nullptr);  // freed by the kernel once both sides detach
    if (!ok || error != 0) {
        shmdt(info_.shmaddr);
        image_->data = nullptr;
        XDestroyImage(image_);
        image_ = nullptr;
        throw deskstream::Error(DS_ERR_UNSUPPORTED,
                                "the X server could not attach a shared memory segment "
                                "(MIT-SHM needs a local display): X error " +
                                    std::to_string(error));
    }
    attached_ = true;
}

ShmImage::~ShmImage() {
    if (!image_) return;
    if (attached_) {
        XShmDetach(display_, &info_);
        XSync(display_, False);
    }
    shmdt(info_.shmaddr);
    image_->data = nullptr;  // the pixels were the segment's, not malloc'ed
    XDestroyImage(image_);
}

}  // namespace ds_x11
