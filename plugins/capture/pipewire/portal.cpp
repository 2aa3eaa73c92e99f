// xdg-desktop-portal ScreenCast client of the pipewire capture plugin (see portal.hpp). The
// method and signal shapes follow the portal's published D-Bus interface
// (org.freedesktop.portal.ScreenCast, org.freedesktop.portal.Request), summarised in
// docs/capture.md.
#include "portal.hpp"

#include "deskstream/plugin.hpp"

#include <dbus/dbus.h>
#include <sys/stat.h>

#include <atomic>
#include <cstdlib>
#include <functional>
#include <map>
#include <memory>

namespace ds_pipewire {

using deskstream::Error;

namespace {

constexpr const char* kPortalName = "org.freedesktop.portal.Desktop";
constexpr const char* kPortalPath = "/org/freedesktop/portal/desktop";
constexpr const char* kScreenCast = "org.freedesktop.portal.ScreenCast";
constexpr uint32_t kSourceMonitor = 1, kCursorEmbedded = 2, kPersistUntilRevoked = 2;

struct MessageDeleter {
    void operator()(DBusMessage* m) const { dbus_message_unref(m); }
};
using Message = std::unique_ptr<DBusMessage, MessageDeleter>;

struct DBusErr {
    DBusError e;
    DBusErr() { dbus_error_init(&e); }
    ~DBusErr() { dbus_error_free(&e); }
    std::string text() const {
        return std::string(e.name ? e.name : "") + ": " + (e.message ? e.message : "");
    }
};

// Opens a private connection to the session bus. The address is read here on every call
// (libdbus's own lookup is cached for the life of the process), and without an address libdbus
// would fall back to X11 autolaunch and leave a bus daemon behind: only an existing bus is used.
DBusConnection* openBus() {
    const char* env = std::getenv("DBUS_SESSION_BUS_ADDRESS");
    const char* runtime = std::getenv("XDG_RUNTIME_DIR");
    std::string address = env && *env ? env : "";
    struct stat st;
    if (address.empty() && runtime && *runtime &&
        ::stat((std::string(runtime) + "/bus").c_str(), &st) == 0)
        address = "unix:path=" + std::string(runtime) + "/bus";
    if (address.empty())
        throw Error(DS_ERR_UNSUPPORTED,
                    "no D-Bus session bus (DBUS_SESSION_BUS_ADDRESS is unset and there is no "
                    "$XDG_RUNTIME_DIR/bus)");
    DBusErr err;
    DBusConnection* bus = dbus_connection_open_private(address.c_str(), &err.e);
    if (!bus)
        throw Error(DS_ERR_UNSUPPORTED,
                    "cannot connect to the D-Bus session bus (" + err.text() + ")");
    dbus_connection_set_exit_on_disconnect(bus, FALSE);
    if (!dbus_bus_register(bus, &err.e)) {
        dbus_connection_close(bus);
        dbus_connection_unref(bus);
        throw Error(DS_ERR_UNSUPPORTED,
                    "the D-Bus session bus refused this client (" + err.text() + ")");
    }
    return bus;
}

void closeBus(DBusConnection* bus) {
    dbus_connection_close(bus);
    dbus_connection_unref(bus);
}

// A value of an a{sv} options dictionary.
struct Option {
    int type;  // DBUS_TYPE_STRING, DBUS_TYPE_UINT32 or DBUS_TYPE_BOOLEAN
    std::string s;
    uint32_t u = 0;
};

void appendOptions(DBusMessageIter* args, const std::map<std::string, Option>& options) {
    DBusMessageIter dict;
    dbus_message_iter_open_container(args, DBUS_TYPE_ARRAY, "{sv}", &dict);
    for (const auto& kv : options) {
        DBusMessageIter entry, variant;
        const char* key = kv.first.c_str();
        dbus_message_iter_open_container(&dict, DBUS_TYPE_DICT_ENTRY, nullptr, &entry);
        dbus_message_iter_append_basic(&entry, DBUS_TYPE_STRING, &key);
        const Option& o = kv.second;
        const char sig[2] = {static_cast<char>(o.type), '\0'};
        dbus_message_iter_open_container(&entry, DBUS_TYPE_VARIANT, sig, &variant);
        if (o.type == DBUS_TYPE_STRING) {
            const char* s = o.s.c_str();
            dbus_message_iter_append_basic(&variant, DBUS_TYPE_STRING, &s);
        } else {
            dbus_uint32_t u = o.u;
            dbus_message_iter_append_basic(&variant, o.type, &u);
        }
        dbus_message_iter_close_container(&entry, &variant);
        dbus_message_iter_close_container(&dict, &entry);
    }
    dbus_message_iter_close_container(args, &dict);
}

Message call(DBusConnection* bus, DBusMessage* request, int timeoutMs, const std::string& what) {
    Message m(request);
    DBusErr err;
    DBusMessage* reply = dbus_connection_send_with_reply_and_block(bus, m.get(), timeoutMs, &err.e);
    if (!reply)
        throw Error(DS_ERR_UNSUPPORTED,
                    "xdg-desktop-portal " + what + " failed (" + err.text() + ")");
    return Message(reply);
}

// Reads a uint32 property of the ScreenCast interface.
uint32_t screenCastProperty(DBusConnection* bus, const char* name, int timeoutMs) {
    DBusMessage* m = dbus_message_new_method_call(kPortalName, kPortalPath,
                                                  "org.freedesktop.DBus.Properties", "Get");
    const char* iface = kScreenCast;
    dbus_message_append_args(m, DBUS_TYPE_STRING, &iface, DBUS_TYPE_STRING, &name,
                             DBUS_TYPE_INVALID);
    Message reply = call(bus, m, timeoutMs, std::string("ScreenCast.") + name);
    DBusMessageIter it, variant;
    dbus_message_iter_init(reply.get(), &it);
    if (dbus_message_iter_get_arg_type(&it) != DBUS_TYPE_VARIANT) return 0;
    dbus_message_iter_recurse(&it, &variant);
    if (dbus_message_iter_get_arg_type(&variant) != DBUS_TYPE_UINT32) return 0;
    dbus_uint32_t v = 0;
    dbus_message_iter_get_basic(&variant, &v);
    return v;
}

std::string newToken() {
    static std::atomic<unsigned> counter{0};
    return "deskstream" + std::to_string(++counter);
}

// The Request object path the portal will use for `token` (the documented prediction), so
// the Response match is in place before the call returns.
std::string requestPath(DBusConnection* bus, const std::string& token) {
    std::string sender = dbus_bus_get_unique_name(bus);
    if (!sender.empty() && sender[0] == ':') sender.erase(0, 1);
    for (char& c : sender)
        if (c == '.') c = '_';
    return "/org/freedesktop/portal/desktop/request/" + sender + "/" + token;
}

// Calls a ScreenCast method that answers through a Request's Response signal, waits for it
// and hands the results dictionary to `onResult` for each (key, variant iterator).
void request(DBusConnection* bus, const char* method, const std::string& session,
             std::map<std::string, Option> options, std::chrono::milliseconds timeout,
             const std::function<void(const std::string&, DBusMessageIter*)>& onResult) {
    std::string token = newToken();
    options["handle_token"] = Option{DBUS_TYPE_STRING, token};
    std::string path = requestPath(bus, token);
    std::string rule =
        "type='signal',interface='org.freedesktop.portal.Request',member='Response',path='" + path +
        "'";
    DBusErr err;
    dbus_bus_add_match(bus, rule.c_str(), &err.e);
    if (dbus_error_is_set(&err.e))
        throw Error(DS_ERR_IO, "D-Bus AddMatch failed (" + err.text() + ")");

    DBusMessage* m = dbus_message_new_method_call(kPortalName, kPortalPath, kScreenCast, method);
    DBusMessageIter args;
    dbus_message_iter_init_append(m, &args);
    if (!session.empty()) {
        const char* s = session.c_str();
        dbus_message_iter_append_basic(&args, DBUS_TYPE_OBJECT_PATH, &s);
    }
    if (std::string(method) == "Start") {
        const char* parentWindow = "";
        dbus_message_iter_append_basic(&args, DBUS_TYPE_STRING, &parentWindow);
    }
    appendOptions(&args, options);
    call(bus, m, 5000, std::string("ScreenCast.") + method);

    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0)
            throw Error(DS_ERR_IO, std::string("xdg-desktop-portal ScreenCast.") + method +
                                       " got no answer within " + std::to_string(timeout.count()) +
                                       " ms");
        if (!dbus_connection_read_write(bus, static_cast<int>(left.count())))
            throw Error(DS_ERR_IO, "the D-Bus session bus closed the connection");
        while (DBusMessage* raw = dbus_connection_pop_message(bus)) {
            Message msg(raw);
            if (!dbus_message_is_signal(raw, "org.freedesktop.portal.Request", "Response") ||
                path != (dbus_message_get_path(raw) ? dbus_message_get_path(raw) : ""))
                continue;
            dbus_bus_remove_match(bus, rule.c_str(), nullptr);
            DBusMessageIter it, dict;
            dbus_message_iter_init(raw, &it);
            dbus_uint32_t response = 2;
            if (dbus_message_iter_get_arg_type(&it) == DBUS_TYPE_UINT32)
                dbus_message_iter_get_basic(&it, &response);
            if (response == 1)
                throw Error(DS_ERR_PERMISSION,
                            std::string("the screen-cast request was cancelled (ScreenCast.") +
                                method + ")");
            if (response != 0)
                throw Error(DS_ERR_IO, std::string("xdg-desktop-portal ScreenCast.") + method +
                                           " failed (response " + std::to_string(response) + ")");
            dbus_message_iter_next(&it);
            if (dbus_message_iter_get_arg_type(&it) != DBUS_TYPE_ARRAY) return;
            dbus_message_iter_recurse(&it, &dict);
            for (; dbus_message_iter_get_arg_type(&dict) == DBUS_TYPE_DICT_ENTRY;
                 dbus_message_iter_next(&dict)) {
                DBusMessageIter entry, value;
                dbus_message_iter_recurse(&dict, &entry);
                const char* key = "";
                dbus_message_iter_get_basic(&entry, &key);
                dbus_message_iter_next(&entry);
                dbus_message_iter_recurse(&entry, &value);
                onResult(key, &value);
            }
            return;
        }
    }
}

std::string stringValue(DBusMessageIter* value) {
    int t = dbus_message_iter_get_arg_type(value);
    if (t != DBUS_TYPE_STRING && t != DBUS_TYPE_OBJECT_PATH) return "";
    const char* s = "";
    dbus_message_iter_get_basic(value, &s);
    return s;
}

}  // namespace

void checkPortalReachable(std::chrono::milliseconds timeout) {
    DBusConnection* bus = openBus();
    try {
        uint32_t version = screenCastProperty(bus, "version", static_cast<int>(timeout.count()));
        if (version == 0)
            throw Error(DS_ERR_UNSUPPORTED, "xdg-desktop-portal has no ScreenCast interface");
    } catch (...) {
        closeBus(bus);
        throw;
    }
    closeBus(bus);
}

PortalSession::PortalSession(const std::string& restoreToken, bool cursor,
                             std::chrono::milliseconds interaction) {
    bus_ = openBus();
    try {
        const uint32_t version = screenCastProperty(bus_, "version", 5000);
        request(bus_, "CreateSession", "",
                {{"session_handle_token", Option{DBUS_TYPE_STRING, newToken()}}},
                std::chrono::milliseconds(10000), [&](const std::string& key, DBusMessageIter* v) {
                    if (key == "session_handle") session_ = stringValue(v);
                });
        if (session_.empty())
            throw Error(DS_ERR_IO, "xdg-desktop-portal CreateSession returned no session handle");

        std::map<std::string, Option> select{
            {"types", Option{DBUS_TYPE_UINT32, "", kSourceMonitor}},
            {"multiple", Option{DBUS_TYPE_BOOLEAN, "", 0}}};
        const uint32_t cursorModes = screenCastProperty(bus_, "AvailableCursorModes", 5000);
        if (cursor && (cursorModes & kCursorEmbedded))
            select["cursor_mode"] = Option{DBUS_TYPE_UINT32, "", kCursorEmbedded};
        if (version >= 4) {  // restore tokens arrived with version 4 of the interface
            select["persist_mode"] = Option{DBUS_TYPE_UINT32, "", kPersistUntilRevoked};
            if (!restoreToken.empty())
                select["restore_token"] = Option{DBUS_TYPE_STRING, restoreToken};
        }
        request(bus_, "SelectSources", session_, select, std::chrono::milliseconds(10000),
                [](const std::string&, DBusMessageIter*) {});

        bool haveStream = false;
        request(bus_, "Start", session_, {}, interaction,
                [&](const std::string& key, DBusMessageIter* v) {
                    if (key == "restore_token") restoreToken_ = stringValue(v);
                    if (key != "streams" || dbus_message_iter_get_arg_type(v) != DBUS_TYPE_ARRAY)
                        return;
                    DBusMessageIter streams, stream;
                    dbus_message_iter_recurse(v, &streams);
                    if (dbus_message_iter_get_arg_type(&streams) != DBUS_TYPE_STRUCT) return;
                    dbus_message_iter_recurse(&streams,
                                              &stream);  // the first stream: (u node, a{sv} props)
                    dbus_uint32_t node = 0;
                    dbus_message_iter_get_basic(&stream, &node);
                    nodeId_ = node;
                    haveStream = true;
                    dbus_message_iter_next(&stream);
                    DBusMessageIter props;
                    dbus_message_iter_recurse(&stream, &props);
                    for (; dbus_message_iter_get_arg_type(&props) == DBUS_TYPE_DICT_ENTRY;
                         dbus_message_iter_next(&props)) {
                        DBusMessageIter entry, value, pair;
                        dbus_message_iter_recurse(&props, &entry);
                        const char* key2 = "";
                        dbus_message_iter_get_basic(&entry, &key2);
                        dbus_message_iter_next(&entry);
                        dbus_message_iter_recurse(&entry, &value);
                        if (std::string(key2) != "position" ||
                            dbus_message_iter_get_arg_type(&value) != DBUS_TYPE_STRUCT)
                            continue;
                        dbus_message_iter_recurse(&value, &pair);
                        dbus_int32_t px = 0, py = 0;
                        dbus_message_iter_get_basic(&pair, &px);
                        dbus_message_iter_next(&pair);
                        dbus_message_iter_get_basic(&pair, &py);
                        x_ = px;
                        y_ = py;
                    }
                });
        if (!haveStream) throw Error(DS_ERR_IO, "xdg-desktop-portal Start returned no stream");
    } catch (...) {
        closeBus(bus_);
        throw;
    }
}

PortalSession::~PortalSession() {
    if (!session_.empty()) {
        DBusMessage* m = dbus_message_new_method_call(kPortalName, session_.c_str(),
                                                      "org.freedesktop.portal.Session", "Close");
        if (m) {
            dbus_connection_send(bus_, m, nullptr);
            dbus_connection_flush(bus_);
            dbus_message_unref(m);
        }
    }
    closeBus(bus_);
}

int PortalSession::openRemote() {
    DBusMessage* m =
        dbus_message_new_method_call(kPortalName, kPortalPath, kScreenCast, "OpenPipeWireRemote");
    DBusMessageIter args;
    dbus_message_iter_init_append(m, &args);
    const char* s = session_.c_str();
    dbus_message_iter_append_basic(&args, DBUS_TYPE_OBJECT_PATH, &s);
    appendOptions(&args, {});
    Message reply = call(bus_, m, 5000, "ScreenCast.OpenPipeWireRemote");
    DBusErr err;
    int fd = -1;
    if (!dbus_message_get_args(reply.get(), &err.e, DBUS_TYPE_UNIX_FD, &fd, DBUS_TYPE_INVALID) ||
        fd < 0)
        throw Error(DS_ERR_IO,
                    "xdg-desktop-portal OpenPipeWireRemote returned no fd (" + err.text() + ")");
    return fd;
}

}  // namespace ds_pipewire
