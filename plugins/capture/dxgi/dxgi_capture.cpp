// deskstream capture plugin "dxgi": Windows desktops through Desktop Duplication
// (IDXGIOutputDuplication), one monitor per output attached to the desktop, on every adapter.
//
// Each grab waits in AcquireNextFrame; a new desktop image is copied through a CPU-readable
// staging texture into the monitor's last-image buffer, the pointer shape and position are
// tracked from the frame info, and the frame handed out is that image with the cursor drawn
// over it. DXGI_ERROR_ACCESS_LOST (mode change, UAC prompt, lock screen) recreates the
// duplication; a changed output geometry gives DS_REINIT. Input goes through SendInput.
//
// Depends on the SDK header and Windows libraries only (d3d11, dxgi, user32); builds with MSVC
// and with mingw-w64 (the test suite cross-compiles it, see docs/capture.md).
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#ifndef NOMINMAX
#define NOMINMAX
#endif
#include <windows.h>
#include <d3d11.h>
#include <dxgi1_2.h>

#include "deskstream/plugin.hpp"

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

namespace {

using deskstream::Error;

// A minimal owning COM pointer (keeps the plugin free of WRL/ATL).
template <class T>
class Com {
public:
    Com() = default;
    Com(const Com& o) : p_(o.p_) {
        if (p_) p_->AddRef();
    }
    Com& operator=(Com o) {
        std::swap(p_, o.p_);
        return *this;
    }
    ~Com() { reset(); }
    void reset() {
        if (p_) p_->Release();
        p_ = nullptr;
    }
    T* get() const { return p_; }
    T* operator->() const { return p_; }
    explicit operator bool() const { return p_ != nullptr; }
    T** put() {
        reset();
        return &p_;
    }
    template <class U>
    Com<U> as() const {
        Com<U> out;
        if (p_) p_->QueryInterface(__uuidof(U), reinterpret_cast<void**>(out.put()));
        return out;
    }

private:
    T* p_ = nullptr;
};

std::string hex(HRESULT hr) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "0x%08lX", static_cast<unsigned long>(hr));
    return buf;
}

std::string utf8(const wchar_t* w) {
    int n = WideCharToMultiByte(CP_UTF8, 0, w, -1, nullptr, 0, nullptr, nullptr);
    if (n <= 1) return "";
    std::string s(static_cast<size_t>(n), '\0');
    WideCharToMultiByte(CP_UTF8, 0, w, -1, &s[0], n, nullptr, nullptr);
    s.resize(static_cast<size_t>(n - 1));
    return s;
}

// Desktop Duplication reports physical pixels only to a per-monitor DPI aware thread; asked for
// dynamically so the plugin still loads on Windows versions before 10 1607.
void beDpiAware() {
    using SetContext = void*(WINAPI*)(void*);
    HMODULE user32 = GetModuleHandleW(L"user32.dll");
    if (!user32) return;
    auto set = reinterpret_cast<SetContext>(
        reinterpret_cast<void (*)()>(GetProcAddress(user32, "SetThreadDpiAwarenessContext")));
    if (set) set(reinterpret_cast<void*>(static_cast<intptr_t>(-4)));  // PER_MONITOR_AWARE_V2
}

struct Cursor {
    std::vector<uint8_t> shape;
    DXGI_OUTDUPL_POINTER_SHAPE_INFO info{};
    POINT position{0, 0};  // top-left of the shape, relative to the output
    bool visible = false;
};

struct Monitor {
    Com<ID3D11Device> device;
    Com<ID3D11DeviceContext> context;
    Com<IDXGIOutput1> output;
    Com<IDXGIOutputDuplication> duplication;
    Com<ID3D11Texture2D> staging;
    ds_monitor_info info{};
    std::vector<uint8_t> desktop;  // last desktop image, BGRA, stride width * 4
    bool haveImage = false;
    Cursor cursor;
    // plugin.h: the host may hold up to DS_CAPTURE_MAX_HELD_FRAMES frames per monitor.
    std::array<std::vector<uint8_t>, DS_CAPTURE_MAX_HELD_FRAMES> buffers;
    std::array<bool, DS_CAPTURE_MAX_HELD_FRAMES> held{};
    uint64_t sequence = 0;
    bool anyHeld() const { return std::find(held.begin(), held.end(), true) != held.end(); }
};

// Draws the pointer shape over a BGRA picture (the three shape kinds of DXGI).
void drawCursor(const Cursor& c, uint8_t* pixels, uint32_t width, uint32_t height) {
    if (!c.visible || c.shape.empty()) return;
    const DXGI_OUTDUPL_POINTER_SHAPE_INFO& s = c.info;
    const bool mono = s.Type == DXGI_OUTDUPL_POINTER_SHAPE_TYPE_MONOCHROME;
    const int shapeH = static_cast<int>(mono ? s.Height / 2 : s.Height);
    for (int sy = 0; sy < shapeH; ++sy) {
        const int y = c.position.y + sy;
        if (y < 0 || y >= static_cast<int>(height)) continue;
        for (int sx = 0; sx < static_cast<int>(s.Width); ++sx) {
            const int x = c.position.x + sx;
            if (x < 0 || x >= static_cast<int>(width)) continue;
            uint8_t* p = pixels + (static_cast<size_t>(y) * width + static_cast<size_t>(x)) * 4;
            if (mono) {
                const size_t bit = 0x80u >> (sx % 8);
                const bool andBit =
                    c.shape[static_cast<size_t>(sy) * s.Pitch + static_cast<size_t>(sx / 8)] & bit;
                const bool xorBit = c.shape[static_cast<size_t>(sy + shapeH) * s.Pitch +
                                            static_cast<size_t>(sx / 8)] &
                                    bit;
                for (int i = 0; i < 3; ++i)
                    p[i] = static_cast<uint8_t>((andBit ? p[i] : 0) ^ (xorBit ? 0xFF : 0));
                continue;
            }
            const uint8_t* q =
                &c.shape[static_cast<size_t>(sy) * s.Pitch + static_cast<size_t>(sx) * 4];
            if (s.Type == DXGI_OUTDUPL_POINTER_SHAPE_TYPE_MASKED_COLOR) {
                // Alpha 0: the shape's colour; alpha 0xFF: XOR with the screen.
                for (int i = 0; i < 3; ++i) p[i] = q[3] ? static_cast<uint8_t>(p[i] ^ q[i]) : q[i];
            } else {  // COLOR: straight alpha blend
                const unsigned a = q[3];
                for (int i = 0; i < 3; ++i)
                    p[i] = static_cast<uint8_t>((q[i] * a + p[i] * (255 - a)) / 255);
            }
        }
    }
}

// DOM KeyboardEvent.key names of non-character keys.
struct NamedKey {
    const char* name;
    WORD vk;
    bool extended;
};
constexpr NamedKey kNamedKeys[] = {
    {"Enter", VK_RETURN, false},
    {"Tab", VK_TAB, false},
    {"Escape", VK_ESCAPE, false},
    {"Backspace", VK_BACK, false},
    {"Delete", VK_DELETE, true},
    {"Insert", VK_INSERT, true},
    {"Home", VK_HOME, true},
    {"End", VK_END, true},
    {"PageUp", VK_PRIOR, true},
    {"PageDown", VK_NEXT, true},
    {"ArrowLeft", VK_LEFT, true},
    {"ArrowRight", VK_RIGHT, true},
    {"ArrowUp", VK_UP, true},
    {"ArrowDown", VK_DOWN, true},
    {"Shift", VK_SHIFT, false},
    {"Control", VK_CONTROL, false},
    {"Alt", VK_MENU, false},
    {"Meta", VK_LWIN, true},
    {"CapsLock", VK_CAPITAL, false},
    {"NumLock", VK_NUMLOCK, true},
    {"ScrollLock", VK_SCROLL, false},
    {"Pause", VK_PAUSE, false},
    {"PrintScreen", VK_SNAPSHOT, true},
    {"ContextMenu", VK_APPS, true},
    {" ", VK_SPACE, false},
    {"F1", VK_F1, false},
    {"F2", VK_F2, false},
    {"F3", VK_F3, false},
    {"F4", VK_F4, false},
    {"F5", VK_F5, false},
    {"F6", VK_F6, false},
    {"F7", VK_F7, false},
    {"F8", VK_F8, false},
    {"F9", VK_F9, false},
    {"F10", VK_F10, false},
    {"F11", VK_F11, false},
    {"F12", VK_F12, false},
};

class DxgiCapture : public deskstream::Capture {
public:
    static constexpr int32_t kRank =
        100;  // the native grab on Windows: preferred by capture = auto
    static constexpr const char* kVendor = "deskstream";
    static constexpr uint32_t kCapabilities = DS_CAPTURE_CAP_CURSOR;

    static void probe(const deskstream::Host&, const deskstream::Config&) {
        Com<IDXGIFactory1> factory;
        HRESULT hr =
            CreateDXGIFactory1(__uuidof(IDXGIFactory1), reinterpret_cast<void**>(factory.put()));
        if (FAILED(hr))
            throw Error(DS_ERR_UNSUPPORTED, "CreateDXGIFactory1 failed (" + hex(hr) + ")");
        Com<IDXGIAdapter1> adapter;
        for (UINT a = 0; factory->EnumAdapters1(a, adapter.put()) != DXGI_ERROR_NOT_FOUND; ++a) {
            Com<IDXGIOutput> output;
            for (UINT o = 0; adapter->EnumOutputs(o, output.put()) != DXGI_ERROR_NOT_FOUND; ++o) {
                DXGI_OUTPUT_DESC d;
                if (SUCCEEDED(output->GetDesc(&d)) && d.AttachedToDesktop &&
                    output.as<IDXGIOutput1>())
                    return;
            }
        }
        throw Error(DS_ERR_UNSUPPORTED,
                    "no DXGI 1.2 output is attached to the desktop (a service session or "
                    "a remote session without a display?)");
    }

    DxgiCapture(const deskstream::Host& host, const deskstream::Config&) : host_(host) {
        beDpiAware();
        enumerate();
        std::string names;
        for (const auto& m : monitors_)
            names += (names.empty() ? "" : ", ") + std::string(m->info.name) + " " +
                     std::to_string(m->info.width) + "x" + std::to_string(m->info.height);
        host_.info("dxgi capture: " + std::to_string(monitors_.size()) + " output(s): " + names);
    }

    std::vector<ds_monitor_info> monitors() override {
        std::vector<ds_monitor_info> out;
        for (const auto& m : monitors_) out.push_back(m->info);
        return out;
    }

    ds_status grab(uint32_t index, uint32_t timeoutMs, ds_frame& out) override {
        if (index >= monitors_.size())
            throw Error(DS_ERR_INVALID_ARGUMENT, "monitor " + std::to_string(index) +
                                                     " does not exist (there are " +
                                                     std::to_string(monitors_.size()) + ")");
        Monitor& m = *monitors_[index];
        size_t slot = 0;
        while (slot < m.held.size() && m.held[slot]) ++slot;
        if (slot == m.held.size())
            throw Error(DS_ERR_INVALID_ARGUMENT, "monitor " + std::to_string(index) + ": " +
                                                     std::to_string(m.held.size()) +
                                                     " frames are still held; release one first");
        if (!m.duplication) {
            ds_status s = recreate(m, timeoutMs);
            if (s != DS_OK) return s;
        }

        DXGI_OUTDUPL_FRAME_INFO frameInfo{};
        Com<IDXGIResource> resource;
        HRESULT hr = m.duplication->AcquireNextFrame(timeoutMs, &frameInfo, resource.put());
        if (hr == DXGI_ERROR_WAIT_TIMEOUT) return DS_TIMEOUT;
        if (hr == DXGI_ERROR_ACCESS_LOST) {
            host_.info(std::string("dxgi capture: access to ") + m.info.name +
                       " lost (mode change, UAC or lock screen); recreating the duplication");
            m.duplication.reset();
            return recreate(m, 0) == DS_REINIT ? DS_REINIT : DS_TIMEOUT;
        }
        if (FAILED(hr))
            throw Error(DS_ERR_IO, std::string("AcquireNextFrame on ") + m.info.name + " failed (" +
                                       hex(hr) + ")");

        bool changed = false;
        try {
            if (frameInfo.LastPresentTime.QuadPart != 0) changed |= copyImage(m, resource);
            if (frameInfo.LastMouseUpdateTime.QuadPart != 0) changed |= updateCursor(m, frameInfo);
        } catch (...) {
            m.duplication->ReleaseFrame();
            throw;
        }
        m.duplication->ReleaseFrame();
        if (!changed || !m.haveImage) return DS_TIMEOUT;  // nothing the viewer would see

        std::vector<uint8_t>& pixels = m.buffers[slot];
        pixels = m.desktop;  // same size after the first frame: no allocation
        drawCursor(m.cursor, pixels.data(), m.info.width, m.info.height);
        m.held[slot] = true;
        out.monitor = index;
        out.width = m.info.width;
        out.height = m.info.height;
        out.stride = m.info.width * 4;
        out.format = DS_PIXEL_BGRX;
        out.data = pixels.data();
        out.capture_time_us = host_.wallUs();
        out.sequence = ++m.sequence;
        out.damage = nullptr;
        out.damage_count = 0;
        out.plugin_data = &m.held[slot];
        return DS_OK;
    }

    void release(ds_frame& frame) override {
        for (auto* list : {&monitors_, &retired_})
            for (auto& m : *list)
                for (auto& h : m->held)
                    if (frame.plugin_data == &h) h = false;
        retired_.erase(
            std::remove_if(retired_.begin(), retired_.end(),
                           [](const std::unique_ptr<Monitor>& m) { return !m->anyHeld(); }),
            retired_.end());
    }

    void injectInput(const ds_input_event& e) {
        if (e.monitor >= monitors_.size())
            throw Error(DS_ERR_INVALID_ARGUMENT,
                        "input for monitor " + std::to_string(e.monitor) + " which does not exist");
        const ds_monitor_info& mon = monitors_[e.monitor]->info;
        INPUT in{};
        in.type = INPUT_MOUSE;
        switch (e.type) {
            case DS_INPUT_MOUSE_MOVE:
            case DS_INPUT_MOUSE_DOWN:
            case DS_INPUT_MOUSE_UP: {
                // Absolute coordinates span the virtual desktop as 0..65535.
                const int vx = GetSystemMetrics(SM_XVIRTUALSCREEN),
                          vy = GetSystemMetrics(SM_YVIRTUALSCREEN);
                const int vw = std::max(2, GetSystemMetrics(SM_CXVIRTUALSCREEN));
                const int vh = std::max(2, GetSystemMetrics(SM_CYVIRTUALSCREEN));
                const int x = mon.x + std::clamp(e.x, 0, static_cast<int>(mon.width) - 1) - vx;
                const int y = mon.y + std::clamp(e.y, 0, static_cast<int>(mon.height) - 1) - vy;
                in.mi.dx = static_cast<LONG>((static_cast<int64_t>(x) * 65535) / (vw - 1));
                in.mi.dy = static_cast<LONG>((static_cast<int64_t>(y) * 65535) / (vh - 1));
                in.mi.dwFlags = MOUSEEVENTF_MOVE | MOUSEEVENTF_ABSOLUTE | MOUSEEVENTF_VIRTUALDESK;
                if (e.type != DS_INPUT_MOUSE_MOVE) {
                    const bool down = e.type == DS_INPUT_MOUSE_DOWN;
                    switch (e.button) {
                        case 0:
                            in.mi.dwFlags |= down ? MOUSEEVENTF_LEFTDOWN : MOUSEEVENTF_LEFTUP;
                            break;
                        case 1:
                            in.mi.dwFlags |= down ? MOUSEEVENTF_MIDDLEDOWN : MOUSEEVENTF_MIDDLEUP;
                            break;
                        case 2:
                            in.mi.dwFlags |= down ? MOUSEEVENTF_RIGHTDOWN : MOUSEEVENTF_RIGHTUP;
                            break;
                        case 3:
                        case 4:
                            in.mi.dwFlags |= down ? MOUSEEVENTF_XDOWN : MOUSEEVENTF_XUP;
                            in.mi.mouseData = e.button == 3 ? XBUTTON1 : XBUTTON2;
                            break;
                        default:
                            throw Error(DS_ERR_INVALID_ARGUMENT,
                                        "mouse button " + std::to_string(e.button) + " is unknown");
                    }
                }
                send(&in, 1);
                return;
            }
            case DS_INPUT_WHEEL: {
                // DOM deltas are pixels (about 100 per notch, positive = down/right); Windows counts
                // WHEEL_DELTA (120) per notch, positive = up/right.
                INPUT wheel[2]{};
                UINT n = 0;
                if (e.delta_y != 0) {
                    wheel[n].type = INPUT_MOUSE;
                    wheel[n].mi.dwFlags = MOUSEEVENTF_WHEEL;
                    wheel[n++].mi.mouseData = static_cast<DWORD>(-e.delta_y * WHEEL_DELTA / 100);
                }
                if (e.delta_x != 0) {
                    wheel[n].type = INPUT_MOUSE;
                    wheel[n].mi.dwFlags = MOUSEEVENTF_HWHEEL;
                    wheel[n++].mi.mouseData = static_cast<DWORD>(e.delta_x * WHEEL_DELTA / 100);
                }
                if (n) send(wheel, n);
                return;
            }
            case DS_INPUT_KEY_DOWN:
            case DS_INPUT_KEY_UP: {
                const std::string key = e.key ? e.key : "";
                const DWORD up = e.type == DS_INPUT_KEY_UP ? KEYEVENTF_KEYUP : 0;
                INPUT k{};
                k.type = INPUT_KEYBOARD;
                for (const NamedKey& named : kNamedKeys)
                    if (key == named.name) {
                        k.ki.wVk = named.vk;
                        k.ki.dwFlags = up | (named.extended ? KEYEVENTF_EXTENDEDKEY : 0);
                        send(&k, 1);
                        return;
                    }
                // One character: sent as that Unicode character, whatever the keyboard layout.
                wchar_t chars[4] = {};
                const int n = MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, key.data(),
                                                  static_cast<int>(key.size()), chars, 3);
                if (n < 1 || n > 2)
                    throw Error(DS_ERR_INVALID_ARGUMENT,
                                "key '" + key + "' is neither a character nor a known key name");
                INPUT units[2]{};
                for (int i = 0; i < n; ++i) {
                    units[i].type = INPUT_KEYBOARD;
                    units[i].ki.wScan = static_cast<WORD>(chars[i]);
                    units[i].ki.dwFlags = KEYEVENTF_UNICODE | up;
                }
                send(units, static_cast<UINT>(n));
                return;
            }
        }
        throw Error(DS_ERR_INVALID_ARGUMENT,
                    "input type " + std::to_string(static_cast<int>(e.type)) + " is unknown");
    }

private:
    static void send(INPUT* inputs, UINT count) {
        if (SendInput(count, inputs, sizeof(INPUT)) != count)
            throw Error(DS_ERR_PERMISSION, "SendInput was blocked (error " +
                                               std::to_string(GetLastError()) +
                                               "; UIPI: the target runs with higher integrity?)");
    }

    // Finds every output attached to the desktop and opens its duplication.
    void enumerate() {
        Com<IDXGIFactory1> factory;
        HRESULT hr =
            CreateDXGIFactory1(__uuidof(IDXGIFactory1), reinterpret_cast<void**>(factory.put()));
        if (FAILED(hr))
            throw Error(DS_ERR_UNSUPPORTED, "CreateDXGIFactory1 failed (" + hex(hr) + ")");
        std::vector<std::unique_ptr<Monitor>> found;
        Com<IDXGIAdapter1> adapter;
        for (UINT a = 0; factory->EnumAdapters1(a, adapter.put()) != DXGI_ERROR_NOT_FOUND; ++a) {
            Com<ID3D11Device> device;
            Com<ID3D11DeviceContext> context;
            Com<IDXGIOutput> output;
            for (UINT o = 0; adapter->EnumOutputs(o, output.put()) != DXGI_ERROR_NOT_FOUND; ++o) {
                DXGI_OUTPUT_DESC d;
                Com<IDXGIOutput1> output1 = output.as<IDXGIOutput1>();
                if (FAILED(output->GetDesc(&d)) || !d.AttachedToDesktop || !output1) continue;
                if (!device) {  // one device per adapter: a duplication must use its output's adapter
                    hr = D3D11CreateDevice(adapter.get(), D3D_DRIVER_TYPE_UNKNOWN, nullptr, 0,
                                           nullptr, 0, D3D11_SDK_VERSION, device.put(), nullptr,
                                           context.put());
                    if (FAILED(hr)) {
                        host_.warning("dxgi capture: D3D11CreateDevice failed on adapter " +
                                      std::to_string(a) + " (" + hex(hr) +
                                      "); its outputs are skipped");
                        break;
                    }
                }
                auto m = std::make_unique<Monitor>();
                m->device = device;
                m->context = context;
                m->output = output1;
                m->info.struct_size = sizeof m->info;
                m->info.index = static_cast<uint32_t>(found.size());
                std::snprintf(m->info.name, sizeof m->info.name, "%s", utf8(d.DeviceName).c_str());
                m->info.x = d.DesktopCoordinates.left;
                m->info.y = d.DesktopCoordinates.top;
                m->info.width =
                    static_cast<uint32_t>(d.DesktopCoordinates.right - d.DesktopCoordinates.left);
                m->info.height =
                    static_cast<uint32_t>(d.DesktopCoordinates.bottom - d.DesktopCoordinates.top);
                MONITORINFO mi{};
                mi.cbSize = sizeof mi;
                m->info.primary =
                    GetMonitorInfoW(d.Monitor, &mi) && (mi.dwFlags & MONITORINFOF_PRIMARY) ? 1 : 0;
                found.push_back(std::move(m));
            }
        }
        if (found.empty()) throw Error(DS_ERR_UNSUPPORTED, "no output is attached to the desktop");
        for (auto& m : found) {
            ds_status s = recreate(*m, 0, false);
            if (s < 0) throw Error(s, std::string("cannot duplicate ") + m->info.name);
        }
        // Frames still held by the host keep their old monitors alive until released.
        for (auto& m : monitors_)
            if (m->anyHeld()) retired_.push_back(std::move(m));
        monitors_ = std::move(found);
    }

    // (Re)creates the duplication of m. DS_OK: ready; DS_TIMEOUT: not possible right now (secure
    // desktop), try again on the next grab; DS_REINIT: the outputs changed and were listed again
    // (m is gone then). enumerate() passes relist = false: it has just read the geometry.
    ds_status recreate(Monitor& m, uint32_t waitMs, bool relist = true) {
        DXGI_OUTPUT_DESC d;
        if (relist &&
            (FAILED(m.output->GetDesc(&d)) || !d.AttachedToDesktop ||
             d.DesktopCoordinates.left != m.info.x || d.DesktopCoordinates.top != m.info.y ||
             static_cast<uint32_t>(d.DesktopCoordinates.right - d.DesktopCoordinates.left) !=
                 m.info.width ||
             static_cast<uint32_t>(d.DesktopCoordinates.bottom - d.DesktopCoordinates.top) !=
                 m.info.height)) {
            host_.info("dxgi capture: the outputs changed; listing them again");
            enumerate();
            return DS_REINIT;
        }
        HRESULT hr = m.output->DuplicateOutput(m.device.get(), m.duplication.put());
        if (SUCCEEDED(hr)) {
            m.staging.reset();
            return DS_OK;
        }
        if (hr == E_ACCESSDENIED || hr == DXGI_ERROR_UNSUPPORTED ||
            hr == DXGI_ERROR_SESSION_DISCONNECTED || hr == DXGI_ERROR_NOT_CURRENTLY_AVAILABLE) {
            // Secure desktop (UAC, lock screen) or a session switch: wait instead of spinning.
            Sleep(std::min<uint32_t>(waitMs, 100));
            return DS_TIMEOUT;
        }
        if (relist && (hr == DXGI_ERROR_DEVICE_REMOVED || hr == DXGI_ERROR_DEVICE_RESET)) {
            enumerate();
            return DS_REINIT;
        }
        throw Error(DS_ERR_IO,
                    std::string("DuplicateOutput on ") + m.info.name + " failed (" + hex(hr) + ")");
    }

    bool copyImage(Monitor& m, Com<IDXGIResource>& resource) {
        Com<ID3D11Texture2D> texture = resource.as<ID3D11Texture2D>();
        if (!texture) return false;
        D3D11_TEXTURE2D_DESC desc;
        texture->GetDesc(&desc);
        if (desc.Width != m.info.width || desc.Height != m.info.height)
            return false;  // rotated: see docs
        if (!m.staging) {
            desc.Usage = D3D11_USAGE_STAGING;
            desc.BindFlags = 0;
            desc.CPUAccessFlags = D3D11_CPU_ACCESS_READ;
            desc.MiscFlags = 0;
            desc.MipLevels = 1;
            desc.ArraySize = 1;
            desc.SampleDesc.Count = 1;
            desc.SampleDesc.Quality = 0;
            HRESULT hr = m.device->CreateTexture2D(&desc, nullptr, m.staging.put());
            if (FAILED(hr))
                throw Error(DS_ERR_NO_MEMORY, "CreateTexture2D (staging) failed (" + hex(hr) + ")");
        }
        m.context->CopyResource(m.staging.get(), texture.get());
        D3D11_MAPPED_SUBRESOURCE mapped;
        HRESULT hr = m.context->Map(m.staging.get(), 0, D3D11_MAP_READ, 0, &mapped);
        if (FAILED(hr))
            throw Error(DS_ERR_IO, "Map of the staging texture failed (" + hex(hr) + ")");
        const size_t row = size_t{m.info.width} * 4;
        m.desktop.resize(row * m.info.height);
        for (uint32_t y = 0; y < m.info.height; ++y)
            std::memcpy(m.desktop.data() + y * row,
                        static_cast<const uint8_t*>(mapped.pData) + y * mapped.RowPitch, row);
        m.context->Unmap(m.staging.get(), 0);
        m.haveImage = true;
        return true;
    }

    bool updateCursor(Monitor& m, const DXGI_OUTDUPL_FRAME_INFO& f) {
        Cursor& c = m.cursor;
        bool changed =
            c.visible != (f.PointerPosition.Visible != FALSE) ||
            (f.PointerPosition.Visible && (c.position.x != f.PointerPosition.Position.x ||
                                           c.position.y != f.PointerPosition.Position.y));
        c.visible = f.PointerPosition.Visible != FALSE;
        if (c.visible) c.position = f.PointerPosition.Position;
        if (f.PointerShapeBufferSize > 0) {
            c.shape.resize(f.PointerShapeBufferSize);
            UINT needed = 0;
            HRESULT hr = m.duplication->GetFramePointerShape(f.PointerShapeBufferSize,
                                                             c.shape.data(), &needed, &c.info);
            if (FAILED(hr)) c.shape.clear();
            changed = true;
        }
        return changed;
    }

    deskstream::Host host_;
    std::vector<std::unique_ptr<Monitor>> monitors_;
    std::vector<std::unique_ptr<Monitor>>
        retired_;  // replaced by a re-enumeration, frames still held
};

}  // namespace

DESKSTREAM_PLUGIN(
    DxgiCapture, "dxgi", "1.0.0",
    "Windows desktops through DXGI Desktop Duplication, with the cursor; input through SendInput")
