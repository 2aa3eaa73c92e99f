/*
 * deskstream plugin SDK — the stable C ABI between the deskstream host and its plugins.
 *
 * A plugin is a shared library that exports exactly one symbol:
 *
 *     DS_EXPORT const ds_plugin_descriptor *deskstream_plugin_entry(void);
 *
 * The descriptor is plain data (readable without creating anything) and points to the vtable
 * of the plugin's kind: ds_capture_vtable, ds_encoder_vtable or ds_store_vtable.
 *
 * VERSIONING
 *   DS_ABI_MAJOR changes only when an existing struct or function changes meaning or layout.
 *   DS_ABI_MINOR grows when a function or field is appended to the END of a struct.
 *   The host loads a plugin when plugin.major == host.major and plugin.minor <= host.minor.
 *   Every struct that crosses the boundary begins with `uint32_t struct_size` (= sizeof as the
 *   writer compiled it). A reader copies min(struct_size, sizeof) into a zeroed struct, so a
 *   field the writer did not know reads as 0 / NULL.
 *
 *   Version history
 *     1.0  first release: descriptor, host API, capture / encoder / store vtables.
 *
 * STATUS CODES AND ERRORS
 *   Every fallible call returns ds_status: 0 ok, > 0 a non-error outcome (timeout, reinit),
 *   < 0 an error. Every fallible call also takes `char *err, size_t err_size`: a buffer owned by
 *   the CALLER; on error the plugin writes a NUL-terminated, human-readable message into it
 *   (truncated to err_size). err may be NULL when err_size is 0. No C++ exception, longjmp or
 *   signal ever crosses this boundary.
 *
 * OWNERSHIP
 *   - Strings and structs passed INTO a call are borrowed for the duration of that call only.
 *   - ds_config values are copied out by the plugin during create(); the config object is
 *     not valid afterwards.
 *   - A captured ds_frame belongs to the capture plugin until release_frame() is called on it.
 *     The host overlaps capture and encoding, so a capture instance must allow at least TWO
 *     grabbed frames to be held at once (per monitor); the host never holds more than
 *     DS_CAPTURE_MAX_HELD_FRAMES per monitor. A plugin keeps a small ring of buffers for this.
 *   - An encoder's output (ds_encoded) belongs to the encoder instance and stays valid until the
 *     next encode() or release_output() or destroy() on the same instance.
 *   - Store results are returned through caller-supplied callbacks; the record pointers passed
 *     to a callback are valid only during that callback.
 *   - Whoever allocates frees, through the same plugin (destroy, release_frame, release_output).
 *
 * THREADING
 *   - deskstream_plugin_entry() may be called from any thread; it must be cheap and pure.
 *   - The host_api functions may be called from any thread at any time while the plugin is
 *     loaded.
 *   - Capture and encoder instances are single-threaded: the host never calls two functions on
 *     the SAME instance at once (different instances may run concurrently on different threads).
 *     A capture instance may be driven from a different thread than the one that created it.
 *   - Store instances are shared: every store function except destroy() must be safe to call
 *     concurrently from many threads on the same instance. poll_notifications() is called from
 *     one dedicated thread.
 *   - create() and destroy() of different instances may run concurrently.
 *
 * LIFETIME
 *   The host never unloads a plugin library while the process runs (as OBS does), so static
 *   data in the plugin stays valid until exit.
 */
#ifndef DESKSTREAM_PLUGIN_H
#define DESKSTREAM_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define DS_ABI_MAJOR 1
#define DS_ABI_MINOR 0

#if defined(_WIN32)
#define DS_EXPORT __declspec(dllexport)
#else
#define DS_EXPORT __attribute__((visibility("default")))
#endif

#define DS_PLUGIN_ENTRY_SYMBOL "deskstream_plugin_entry"

/* ---------------------------------------------------------------- status codes */
typedef int32_t ds_status;
enum {
    DS_OK = 0,
    DS_TIMEOUT = 1,              /* nothing happened within the timeout (no new frame, no notify) */
    DS_REINIT = 2,               /* the source changed (mode switch): list monitors again */

    DS_ERR_INVALID_ARGUMENT = -1,
    DS_ERR_UNSUPPORTED = -2,     /* the plugin or its library cannot do this here */
    DS_ERR_NO_MEMORY = -3,
    DS_ERR_IO = -4,
    DS_ERR_STORE_UNAVAILABLE = -5, /* server unreachable, disk gone: retry later */
    DS_ERR_PERMISSION = -6,      /* privileges, read-only file or folder */
    DS_ERR_NOT_FOUND = -7,
    DS_ERR_SCHEMA = -8,          /* schema newer than this build, or a broken migration */
    DS_ERR_AUTH = -9,            /* authentication with a backend failed */
    DS_ERR_CONFIG = -10,         /* a configuration value is missing or invalid */
    DS_ERR_INTERNAL = -11
};

/* ---------------------------------------------------------------- kinds and codecs */
typedef enum ds_plugin_kind {
    DS_KIND_CAPTURE = 1,
    DS_KIND_ENCODER = 2,
    DS_KIND_STORE = 3
} ds_plugin_kind;

/* The numbers are the wire protocol's codec byte (docs/protocol.md, frame header offset 6). */
typedef enum ds_codec {
    DS_CODEC_JPEG = 1,
    DS_CODEC_WEBP = 2,
    DS_CODEC_AVIF = 3,
    DS_CODEC_PNG = 4,
    DS_CODEC_RAW_BGRA = 5
} ds_codec;

typedef enum ds_log_level {
    DS_LOG_TRACE = 0,
    DS_LOG_DEBUG = 1,
    DS_LOG_INFO = 2,
    DS_LOG_WARNING = 3,
    DS_LOG_ERROR = 4
} ds_log_level;

/* ---------------------------------------------------------------- host API */
/* A scoped view of the plugin's own INI section ([capture.x11], [encoder.jpeg], ...).
 * get() copies the value of `key` into out (NUL-terminated, truncated to out_size) and returns
 * the full length of the value, or -1 when the key is not set. Valid during create() only.
 * Host-provided keys (not in the section, always answered by the deskstream host):
 *   "host.state_dir"  the absolute folder for the process's local state (SQLite files...). */
typedef struct ds_config {
    uint32_t struct_size;
    void *ctx;
    const char *section; /* e.g. "encoder.jpeg" */
    int32_t (*get)(void *ctx, const char *key, char *out, size_t out_size);
} ds_config;

/* Handed to every create(); valid for as long as the plugin is loaded. */
typedef struct ds_host_api {
    uint32_t struct_size;
    uint16_t abi_major;
    uint16_t abi_minor;
    void *ctx;
    /* One line per event; `message` must not contain secrets. */
    void (*log)(void *ctx, ds_log_level level, const char *plugin_name, const char *message);
    /* Monotonic clock in microseconds (arbitrary origin). */
    uint64_t (*monotonic_us)(void *ctx);
    /* Wall clock in microseconds since the Unix epoch. */
    uint64_t (*wall_us)(void *ctx);
} ds_host_api;

/* A configuration key the plugin accepts: lets --check-config validate plugin sections. */
typedef enum ds_config_type {
    DS_CONFIG_STRING = 1,
    DS_CONFIG_INT = 2,
    DS_CONFIG_BOOL = 3,
    DS_CONFIG_DOUBLE = 4
} ds_config_type;

typedef struct ds_config_key {
    const char *key;
    ds_config_type type;
    const char *default_value; /* as written in the INI file; NULL: no default */
    int64_t min_value;         /* for DS_CONFIG_INT; ignored when min_value > max_value */
    int64_t max_value;
    const char *allowed;       /* for DS_CONFIG_STRING: '|'-separated choices, NULL: any */
    const char *description;
} ds_config_key;

/* ---------------------------------------------------------------- common types */
typedef struct ds_rect {
    uint32_t x, y, width, height;
} ds_rect;

typedef enum ds_pixel_format {
    DS_PIXEL_BGRA = 1, /* bytes B,G,R,A in memory */
    DS_PIXEL_BGRX = 2, /* bytes B,G,R,x: the 4th byte is undefined */
    DS_PIXEL_RGBA = 3,
    DS_PIXEL_RGBX = 4
} ds_pixel_format;

typedef struct ds_frame {
    uint32_t struct_size;
    uint32_t monitor;
    uint32_t width;
    uint32_t height;
    uint32_t stride; /* bytes per row, >= width * 4 */
    ds_pixel_format format;
    const uint8_t *data;
    uint64_t capture_time_us; /* wall clock */
    uint64_t sequence;        /* increases per grabbed frame of a monitor */
    const ds_rect *damage;    /* optional changed areas; NULL with damage_count 0: all changed */
    uint32_t damage_count;
    void *plugin_data;        /* the capture plugin's own; the host never touches it */
} ds_frame;

/* ---------------------------------------------------------------- capture */
#define DS_MONITOR_NAME_MAX 64
#define DS_CAPTURE_MAX_HELD_FRAMES 2

typedef struct ds_monitor_info {
    uint32_t struct_size;
    uint32_t index;
    char name[DS_MONITOR_NAME_MAX];
    int32_t x, y;
    uint32_t width, height;
    int32_t primary; /* 0 or 1 */
} ds_monitor_info;

typedef enum ds_input_type {
    DS_INPUT_MOUSE_MOVE = 1,
    DS_INPUT_MOUSE_DOWN = 2,
    DS_INPUT_MOUSE_UP = 3,
    DS_INPUT_WHEEL = 4,
    DS_INPUT_KEY_DOWN = 5,
    DS_INPUT_KEY_UP = 6
} ds_input_type;

typedef struct ds_input_event {
    uint32_t struct_size;
    ds_input_type type;
    uint32_t monitor;
    int32_t x, y;        /* monitor-relative pixels */
    int32_t button;      /* 0 left, 1 middle, 2 right (DOM numbering) */
    int32_t delta_x, delta_y;
    const char *key;     /* DOM KeyboardEvent.key, e.g. "a", "Enter" */
} ds_input_event;

enum {
    DS_CAPTURE_CAP_INPUT = 1u << 0,  /* inject_input works */
    DS_CAPTURE_CAP_CURSOR = 1u << 1, /* frames include the cursor */
    DS_CAPTURE_CAP_DAMAGE = 1u << 2  /* frames carry damage rectangles */
};

typedef struct ds_capture_vtable {
    uint32_t struct_size;
    uint32_t capabilities; /* DS_CAPTURE_CAP_* bits */
    /* Optional (may be NULL): can this backend work on this machine right now (display
     * reachable, portal present)? Used by `capture = auto`; DS_OK means yes, otherwise err says
     * why not. Must be cheap and must not keep resources. */
    ds_status (*probe)(const ds_host_api *host, const ds_config *config, char *err, size_t err_size);
    ds_status (*create)(const ds_host_api *host, const ds_config *config, void **out_instance,
                        char *err, size_t err_size);
    void (*destroy)(void *instance);
    /* Fills up to `capacity` entries and sets *count to the number of monitors (may exceed
     * capacity: call again with a larger array). */
    ds_status (*list_monitors)(void *instance, ds_monitor_info *out, uint32_t capacity,
                               uint32_t *count, char *err, size_t err_size);
    /* Waits up to timeout_ms for a frame of `monitor`. DS_OK fills *frame (owned by the plugin
     * until release_frame); DS_TIMEOUT: no new picture; DS_REINIT: monitors changed. */
    ds_status (*grab_frame)(void *instance, uint32_t monitor, uint32_t timeout_ms,
                            ds_frame *frame, char *err, size_t err_size);
    void (*release_frame)(void *instance, ds_frame *frame);
    /* Optional (NULL when DS_CAPTURE_CAP_INPUT is not set). */
    ds_status (*inject_input)(void *instance, const ds_input_event *event, char *err,
                              size_t err_size);
} ds_capture_vtable;

/* ---------------------------------------------------------------- encoder */
typedef struct ds_encode_params {
    uint32_t struct_size;
    int32_t quality;  /* 0..100 */
    int32_t keyframe; /* 1: the caller wants a full, independently decodable picture */
    ds_rect rect;     /* the part of the frame to encode; width or height 0: the whole frame */
} ds_encode_params;

typedef struct ds_encoded {
    uint32_t struct_size;
    const uint8_t *data; /* owned by the encoder instance, see OWNERSHIP */
    size_t size;
    ds_codec codec;
    uint32_t width;  /* of the encoded picture (the rectangle's size for a partial encode) */
    uint32_t height;
    int32_t quality; /* the quality actually used */
} ds_encoded;

typedef struct ds_encoder_vtable {
    uint32_t struct_size;
    ds_codec codec;
    ds_status (*create)(const ds_host_api *host, const ds_config *config, void **out_instance,
                        char *err, size_t err_size);
    void (*destroy)(void *instance);
    /* Encodes params->rect of *frame (borrowed for the call). On DS_OK *out points at the
     * instance's output buffer. Bad input (NULL data, stride < width*4, rect outside the frame,
     * quality outside 0..100) returns DS_ERR_INVALID_ARGUMENT with a message. */
    ds_status (*encode)(void *instance, const ds_frame *frame, const ds_encode_params *params,
                        ds_encoded *out, char *err, size_t err_size);
    /* Optional: tells the encoder the caller is done with the last output early. */
    void (*release_output)(void *instance, ds_encoded *out);
} ds_encoder_vtable;

/* ---------------------------------------------------------------- store */
/* All times are epoch milliseconds, supplied by the caller (the core owns the clock). */
typedef struct ds_client_record {
    uint32_t struct_size;
    const char *client_id;
    const char *name;
    const char *hostname;
    const char *instance_id;
    const char *monitors_json;     /* JSON array as text */
    const char *capabilities_json; /* JSON object as text */
    int64_t connected_at_ms;
    int64_t last_ping_ms;
} ds_client_record;

typedef struct ds_command_record {
    uint32_t struct_size;
    const char *id;                 /* unique command id (uuid); chosen by the caller */
    const char *client_id;          /* desktop_client_id */
    const char *command_type;
    const char *command_data_json;  /* the whole command object as JSON text */
    const char *target_instance_id; /* may be NULL/empty: any instance */
    const char *status;             /* pending | delivered | done | failed | expired */
    const char *result_json;        /* may be NULL */
    const char *origin;             /* who asked (viewer id or "http"); may be NULL */
    int64_t created_at_ms;
    int64_t delivered_at_ms;        /* 0: never */
    int64_t completed_at_ms;        /* 0: not yet */
    int64_t claimed_until_ms;       /* lease end of the last claim; 0: none */
    int32_t attempts;
} ds_command_record;

typedef struct ds_instance_record {
    uint32_t struct_size;
    const char *instance_id;
    const char *public_url;
    int64_t started_at_ms;
    int64_t last_seen_ms;
} ds_instance_record;

typedef void (*ds_client_callback)(void *user, const ds_client_record *record);
typedef void (*ds_command_callback)(void *user, const ds_command_record *record);
typedef void (*ds_instance_callback)(void *user, const ds_instance_record *record);
typedef void (*ds_notify_callback)(void *user, const char *client_id);

typedef struct ds_store_vtable {
    uint32_t struct_size;
    /* Opens (creating and migrating the schema when needed). */
    ds_status (*create)(const ds_host_api *host, const ds_config *config, void **out_instance,
                        char *err, size_t err_size);
    void (*destroy)(void *instance);
    /* Cheap liveness check of the backend (for /readyz). */
    ds_status (*check)(void *instance, char *err, size_t err_size);

    /* active_desktop_clients: insert or update by client_id; durable when DS_OK returns. */
    ds_status (*register_client)(void *instance, const ds_client_record *record, char *err,
                                 size_t err_size);
    /* Sets last_ping of client_id when it is held by instance_id; DS_ERR_NOT_FOUND otherwise. */
    ds_status (*touch_client)(void *instance, const char *client_id, const char *instance_id,
                              int64_t now_ms, char *err, size_t err_size);
    /* Removes client_id's row if it is held by instance_id (NULL: whoever holds it).
     * Removing a row that is not there is DS_OK. */
    ds_status (*unregister_client)(void *instance, const char *client_id,
                                   const char *instance_id, char *err, size_t err_size);
    ds_status (*list_clients)(void *instance, ds_client_callback callback, void *user, char *err,
                              size_t err_size);
    /* Removes rows with last_ping < older_than_ms (only instance_id's when not NULL). */
    ds_status (*reap_clients)(void *instance, int64_t older_than_ms, const char *instance_id,
                              uint32_t *removed, char *err, size_t err_size);
    /* Removes every row held by instance_id (start-up clean-up of a previous run). */
    ds_status (*unregister_instance_clients)(void *instance, const char *instance_id,
                                             uint32_t *removed, char *err, size_t err_size);

    /* relay_instances: insert or update (last_seen = record->last_seen_ms). */
    ds_status (*upsert_instance)(void *instance, const ds_instance_record *record, char *err,
                                 size_t err_size);
    ds_status (*list_instances)(void *instance, ds_instance_callback callback, void *user,
                                char *err, size_t err_size);

    /* desktop_commands: stores the command as pending. An id already stored is not stored
     * again: *created is set to 0 and DS_OK returned (idempotent retries). */
    ds_status (*enqueue_command)(void *instance, const ds_command_record *record,
                                 int32_t *created, char *err, size_t err_size);
    /* Claims up to max_count commands of client_id that are pending, or delivered with an
     * expired lease (claimed_until_ms < now_ms), oldest first: marks them delivered, sets
     * delivered_at and claimed_until = now_ms + lease_ms, attempts + 1, and passes each to the
     * callback. Two concurrent claimers never receive the same command. */
    ds_status (*claim_commands)(void *instance, const char *client_id, int64_t now_ms,
                                int64_t lease_ms, uint32_t max_count,
                                ds_command_callback callback, void *user, char *err,
                                size_t err_size);
    /* Sets status (done | failed) and result of a command. DS_ERR_NOT_FOUND: unknown id. */
    ds_status (*complete_command)(void *instance, const char *command_id, const char *status,
                                  const char *result_json, int64_t now_ms, char *err,
                                  size_t err_size);
    ds_status (*get_command)(void *instance, const char *command_id,
                             ds_command_callback callback, void *user, char *err,
                             size_t err_size);
    /* Marks pending or delivered commands created before older_than_ms as expired. */
    ds_status (*expire_commands)(void *instance, int64_t older_than_ms, int64_t now_ms,
                                 uint32_t *expired, char *err, size_t err_size);

    /* Optional (NULL when the store has no cross-instance wake-ups): waits up to timeout_ms for
     * "a command for client_id was stored" notifications and calls the callback for each.
     * DS_TIMEOUT when none arrived. Called from one dedicated thread. */
    ds_status (*poll_notifications)(void *instance, uint32_t timeout_ms,
                                    ds_notify_callback callback, void *user, char *err,
                                    size_t err_size);
} ds_store_vtable;

/* ---------------------------------------------------------------- descriptor */
typedef struct ds_plugin_descriptor {
    uint32_t struct_size;
    uint16_t abi_major; /* DS_ABI_MAJOR the plugin was built against */
    uint16_t abi_minor;
    ds_plugin_kind kind;
    const char *name;        /* unique per kind's namespace: [a-z0-9_]+, e.g. "jpeg" */
    const char *version;     /* the plugin's own version, e.g. "1.0.0" */
    const char *description;
    const char *license;
    const char *vendor;
    int32_t rank;            /* higher wins for automatic selection (capture = auto) */
    const ds_config_key *config_keys; /* keys of [kind.name]; may be NULL */
    uint32_t config_key_count;
    /* Points to a ds_capture_vtable, ds_encoder_vtable or ds_store_vtable matching `kind`. */
    const void *vtable;
} ds_plugin_descriptor;

typedef const ds_plugin_descriptor *(*ds_plugin_entry_fn)(void);

/* Helper for plugin code: copies a message into a caller-owned error buffer safely. */
static inline void ds_set_error(char *err, size_t err_size, const char *message) {
    size_t i = 0;
    if (!err || err_size == 0) return;
    if (message) {
        for (; i + 1 < err_size && message[i] != '\0'; ++i) err[i] = message[i];
    }
    err[i] = '\0';
}

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* DESKSTREAM_PLUGIN_H */
