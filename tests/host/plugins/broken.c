/* Test plugins that the loader must refuse: one library per BROKEN_CASE, each with exactly one
 * defect. Written in C against plugin.h so every field can be set by hand. */
#include "deskstream/plugin.h"

#include <stddef.h>

static ds_status create(const ds_host_api* h, const ds_config* c, void** o, char* e, size_t n) {
    (void)h, (void)c, (void)e, (void)n;
    *o = NULL;
    return DS_ERR_UNSUPPORTED;
}
static void destroy(void* i) { (void)i; }
static ds_status list_monitors(void* i, ds_monitor_info* o, uint32_t cap, uint32_t* count, char* e,
                               size_t n) {
    (void)i, (void)o, (void)cap, (void)e, (void)n;
    *count = 0;
    return DS_OK;
}
static ds_status grab(void* i, uint32_t m, uint32_t t, ds_frame* f, char* e, size_t n) {
    (void)i, (void)m, (void)t, (void)f, (void)e, (void)n;
    return DS_TIMEOUT;
}
static void release(void* i, ds_frame* f) { (void)i, (void)f; }

static ds_capture_vtable vtable = {
    sizeof(ds_capture_vtable), 0, NULL, create, destroy, list_monitors, grab, release, NULL};
static ds_plugin_descriptor descriptor = {sizeof(ds_plugin_descriptor),
                                          DS_ABI_MAJOR,
                                          DS_ABI_MINOR,
                                          DS_KIND_CAPTURE,
                                          "broken",
                                          "1.0.0",
                                          "a broken plugin",
                                          NULL,
                                          NULL,
                                          0,
                                          NULL,
                                          0,
                                          &vtable};

#define CASE_NO_ENTRY 1
#define CASE_ABI_MAJOR 2
#define CASE_ABI_MINOR 3
#define CASE_UNKNOWN_KIND 4
#define CASE_BAD_NAME 5
#define CASE_NO_VERSION 6
#define CASE_NO_VTABLE 7
#define CASE_SMALL_DESCRIPTOR 8
#define CASE_SMALL_VTABLE 9
#define CASE_MISSING_FUNCTION 10
#define CASE_NULL_DESCRIPTOR 11
#define CASE_KEYS_NULL 12

#if BROKEN_CASE == CASE_NO_ENTRY
/* Exports the descriptor under another name: the loader must not find an entry point. */
DS_EXPORT const ds_plugin_descriptor* deskstream_plugin_entry_misspelled(void) {
    return &descriptor;
}
#else
DS_EXPORT const ds_plugin_descriptor* deskstream_plugin_entry(void) {
#if BROKEN_CASE == CASE_ABI_MAJOR
    descriptor.abi_major = 2;
#elif BROKEN_CASE == CASE_ABI_MINOR
    descriptor.abi_minor = DS_ABI_MINOR + 7;
#elif BROKEN_CASE == CASE_UNKNOWN_KIND
    descriptor.kind = (ds_plugin_kind)9;
#elif BROKEN_CASE == CASE_BAD_NAME
    descriptor.name = "Bad-Name";
#elif BROKEN_CASE == CASE_NO_VERSION
    descriptor.version = NULL;
#elif BROKEN_CASE == CASE_NO_VTABLE
    descriptor.vtable = NULL;
#elif BROKEN_CASE == CASE_SMALL_DESCRIPTOR
    descriptor.struct_size = 24;
#elif BROKEN_CASE == CASE_SMALL_VTABLE
    vtable.struct_size = 8;
#elif BROKEN_CASE == CASE_MISSING_FUNCTION
    vtable.grab_frame = NULL;
#elif BROKEN_CASE == CASE_NULL_DESCRIPTOR
    return NULL;
#elif BROKEN_CASE == CASE_KEYS_NULL
    descriptor.config_key_count = 3;
#endif
    return &descriptor;
}
#endif
