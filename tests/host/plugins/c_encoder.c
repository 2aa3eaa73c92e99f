/* Test plugin written in C against plugin.h only (no plugin.hpp): proves the header compiles
 * as C11 and that a C plugin loads and works. Encoder "test_c_raw" copies the requested
 * rectangle as raw BGRA (codec DS_CODEC_RAW_BGRA) into a buffer it owns. */
#include "deskstream/plugin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct raw_encoder {
    uint8_t* buffer;
    size_t capacity;
} raw_encoder;

static ds_status raw_create(const ds_host_api* host, const ds_config* config, void** out, char* err,
                            size_t err_size) {
    (void)config;
    if (!out) {
        ds_set_error(err, err_size, "out_instance is NULL");
        return DS_ERR_INVALID_ARGUMENT;
    }
    raw_encoder* e = (raw_encoder*)calloc(1, sizeof *e);
    if (!e) {
        ds_set_error(err, err_size, "out of memory");
        return DS_ERR_NO_MEMORY;
    }
    if (host && host->log) host->log(host->ctx, DS_LOG_INFO, "test_c_raw", "C encoder created");
    *out = e;
    return DS_OK;
}

static void raw_destroy(void* instance) {
    raw_encoder* e = (raw_encoder*)instance;
    if (!e) return;
    free(e->buffer);
    free(e);
}

static ds_status raw_encode(void* instance, const ds_frame* frame, const ds_encode_params* params,
                            ds_encoded* out, char* err, size_t err_size) {
    raw_encoder* e = (raw_encoder*)instance;
    if (!e || !frame || !params || !out || !frame->data) {
        ds_set_error(err, err_size, "NULL argument");
        return DS_ERR_INVALID_ARGUMENT;
    }
    if (frame->stride < frame->width * 4) {
        ds_set_error(err, err_size, "stride < width * 4");
        return DS_ERR_INVALID_ARGUMENT;
    }
    ds_rect r = params->rect;
    if (r.width == 0 || r.height == 0) {
        r.x = r.y = 0;
        r.width = frame->width;
        r.height = frame->height;
    }
    if ((uint64_t)r.x + r.width > frame->width || (uint64_t)r.y + r.height > frame->height) {
        char msg[128];
        snprintf(msg, sizeof msg, "rect %ux%u+%u+%u is outside the %ux%u frame", r.width, r.height,
                 r.x, r.y, frame->width, frame->height);
        ds_set_error(err, err_size, msg);
        return DS_ERR_INVALID_ARGUMENT;
    }
    size_t need = (size_t)r.width * r.height * 4;
    if (need > e->capacity) {
        uint8_t* b = (uint8_t*)realloc(e->buffer, need);
        if (!b) {
            ds_set_error(err, err_size, "out of memory");
            return DS_ERR_NO_MEMORY;
        }
        e->buffer = b;
        e->capacity = need;
    }
    for (uint32_t y = 0; y < r.height; ++y)
        memcpy(e->buffer + (size_t)y * r.width * 4,
               frame->data + (size_t)(r.y + y) * frame->stride + (size_t)r.x * 4,
               (size_t)r.width * 4);
    out->data = e->buffer;
    out->size = need;
    out->codec = DS_CODEC_RAW_BGRA;
    out->width = r.width;
    out->height = r.height;
    out->quality = 100;
    return DS_OK;
}

static const ds_encoder_vtable raw_vtable = {
    sizeof(ds_encoder_vtable), DS_CODEC_RAW_BGRA, raw_create, raw_destroy, raw_encode, NULL,
};

static const ds_plugin_descriptor raw_descriptor = {
    sizeof(ds_plugin_descriptor),
    DS_ABI_MAJOR,
    DS_ABI_MINOR,
    DS_KIND_ENCODER,
    "test_c_raw",
    "1.0.0",
    "Raw BGRA encoder written in C",
    "MIT",
    "deskstream tests",
    0,
    NULL,
    0,
    &raw_vtable,
};

DS_EXPORT const ds_plugin_descriptor* deskstream_plugin_entry(void) { return &raw_descriptor; }
