/* ABI freeze test (compiled as C11): the size and every field offset of each struct of plugin
 * ABI 1.0, as x86-64 Linux (LP64) lays them out. The numbers were taken from the frozen 1.0 header
 * (tests/sdk/abi-1.0/deskstream/plugin.h) and must never change: a plugin built against 1.0
 * hands the host exactly these layouts. Built twice (tests/sdk/CMakeLists.txt): against the
 * frozen header, proving the numbers are 1.0's, and against sdk/include, proving the current
 * header keeps them. A struct a later minor grew at its end (ds_store_vtable in 1.1) is checked
 * with ">=" on its size and "==" on every 1.0 field. A failing assert fails the build. */
#include "deskstream/plugin.h"

#include <stddef.h>
#include <stdio.h>

#define DS_FIELD(type, field, offset, size)                                       \
    _Static_assert(offsetof(type, field) == (offset), #type "." #field " moved"); \
    _Static_assert(sizeof(((type*)0)->field) == (size), #type "." #field " changed size")
/* A struct nothing was appended to since 1.0. */
#define DS_SIZE(type, size) _Static_assert(sizeof(type) == (size), #type " changed size")
/* A struct that only grows at its end. */
#define DS_SIZE_AT_LEAST(type, size) _Static_assert(sizeof(type) >= (size), #type " shrank")

_Static_assert(DS_ABI_MAJOR == 1, "a new ABI major needs a new freeze test");
_Static_assert(DS_ABI_MINOR >= 0, "ABI minor");
_Static_assert(sizeof(ds_status) == 4 && sizeof(ds_plugin_kind) == 4 && sizeof(ds_codec) == 4,
               "enums are int-sized in the ABI");
_Static_assert(DS_OK == 0 && DS_TIMEOUT == 1 && DS_REINIT == 2 && DS_ERR_INVALID_ARGUMENT == -1 &&
                   DS_ERR_UNSUPPORTED == -2 && DS_ERR_NO_MEMORY == -3 && DS_ERR_IO == -4 &&
                   DS_ERR_STORE_UNAVAILABLE == -5 && DS_ERR_PERMISSION == -6 &&
                   DS_ERR_NOT_FOUND == -7 && DS_ERR_SCHEMA == -8 && DS_ERR_AUTH == -9 &&
                   DS_ERR_CONFIG == -10 && DS_ERR_INTERNAL == -11,
               "status codes are part of the ABI");
_Static_assert(DS_KIND_CAPTURE == 1 && DS_KIND_ENCODER == 2 && DS_KIND_STORE == 3, "kinds");
_Static_assert(DS_CODEC_JPEG == 1 && DS_CODEC_WEBP == 2 && DS_CODEC_AVIF == 3 &&
                   DS_CODEC_PNG == 4 && DS_CODEC_RAW_BGRA == 5,
               "codecs are the wire protocol's codec byte");
_Static_assert(DS_PIXEL_BGRA == 1 && DS_PIXEL_BGRX == 2 && DS_PIXEL_RGBA == 3 && DS_PIXEL_RGBX == 4,
               "pixel formats");
_Static_assert(DS_CAPTURE_CAP_INPUT == 1 && DS_CAPTURE_CAP_CURSOR == 2 &&
                   DS_CAPTURE_CAP_DAMAGE == 4,
               "capture capability bits");
_Static_assert(DS_MONITOR_NAME_MAX == 64 && DS_CAPTURE_MAX_HELD_FRAMES == 2, "capture limits");

#if defined(__x86_64__) && defined(__LP64__)

DS_SIZE(ds_config, 32);
DS_FIELD(ds_config, struct_size, 0, 4);
DS_FIELD(ds_config, ctx, 8, 8);
DS_FIELD(ds_config, section, 16, 8);
DS_FIELD(ds_config, get, 24, 8);

DS_SIZE(ds_host_api, 40);
DS_FIELD(ds_host_api, struct_size, 0, 4);
DS_FIELD(ds_host_api, abi_major, 4, 2);
DS_FIELD(ds_host_api, abi_minor, 6, 2);
DS_FIELD(ds_host_api, ctx, 8, 8);
DS_FIELD(ds_host_api, log, 16, 8);
DS_FIELD(ds_host_api, monotonic_us, 24, 8);
DS_FIELD(ds_host_api, wall_us, 32, 8);

DS_SIZE(ds_config_key, 56);
DS_FIELD(ds_config_key, key, 0, 8);
DS_FIELD(ds_config_key, type, 8, 4);
DS_FIELD(ds_config_key, default_value, 16, 8);
DS_FIELD(ds_config_key, min_value, 24, 8);
DS_FIELD(ds_config_key, max_value, 32, 8);
DS_FIELD(ds_config_key, allowed, 40, 8);
DS_FIELD(ds_config_key, description, 48, 8);

DS_SIZE(ds_rect, 16);
DS_FIELD(ds_rect, x, 0, 4);
DS_FIELD(ds_rect, y, 4, 4);
DS_FIELD(ds_rect, width, 8, 4);
DS_FIELD(ds_rect, height, 12, 4);

DS_SIZE(ds_frame, 72);
DS_FIELD(ds_frame, struct_size, 0, 4);
DS_FIELD(ds_frame, monitor, 4, 4);
DS_FIELD(ds_frame, width, 8, 4);
DS_FIELD(ds_frame, height, 12, 4);
DS_FIELD(ds_frame, stride, 16, 4);
DS_FIELD(ds_frame, format, 20, 4);
DS_FIELD(ds_frame, data, 24, 8);
DS_FIELD(ds_frame, capture_time_us, 32, 8);
DS_FIELD(ds_frame, sequence, 40, 8);
DS_FIELD(ds_frame, damage, 48, 8);
DS_FIELD(ds_frame, damage_count, 56, 4);
DS_FIELD(ds_frame, plugin_data, 64, 8);

DS_SIZE(ds_monitor_info, 92);
DS_FIELD(ds_monitor_info, struct_size, 0, 4);
DS_FIELD(ds_monitor_info, index, 4, 4);
DS_FIELD(ds_monitor_info, name, 8, 64);
DS_FIELD(ds_monitor_info, x, 72, 4);
DS_FIELD(ds_monitor_info, y, 76, 4);
DS_FIELD(ds_monitor_info, width, 80, 4);
DS_FIELD(ds_monitor_info, height, 84, 4);
DS_FIELD(ds_monitor_info, primary, 88, 4);

DS_SIZE(ds_input_event, 40);
DS_FIELD(ds_input_event, struct_size, 0, 4);
DS_FIELD(ds_input_event, type, 4, 4);
DS_FIELD(ds_input_event, monitor, 8, 4);
DS_FIELD(ds_input_event, x, 12, 4);
DS_FIELD(ds_input_event, y, 16, 4);
DS_FIELD(ds_input_event, button, 20, 4);
DS_FIELD(ds_input_event, delta_x, 24, 4);
DS_FIELD(ds_input_event, delta_y, 28, 4);
DS_FIELD(ds_input_event, key, 32, 8);

DS_SIZE(ds_capture_vtable, 64);
DS_FIELD(ds_capture_vtable, struct_size, 0, 4);
DS_FIELD(ds_capture_vtable, capabilities, 4, 4);
DS_FIELD(ds_capture_vtable, probe, 8, 8);
DS_FIELD(ds_capture_vtable, create, 16, 8);
DS_FIELD(ds_capture_vtable, destroy, 24, 8);
DS_FIELD(ds_capture_vtable, list_monitors, 32, 8);
DS_FIELD(ds_capture_vtable, grab_frame, 40, 8);
DS_FIELD(ds_capture_vtable, release_frame, 48, 8);
DS_FIELD(ds_capture_vtable, inject_input, 56, 8);

DS_SIZE(ds_encode_params, 28);
DS_FIELD(ds_encode_params, struct_size, 0, 4);
DS_FIELD(ds_encode_params, quality, 4, 4);
DS_FIELD(ds_encode_params, keyframe, 8, 4);
DS_FIELD(ds_encode_params, rect, 12, 16);

DS_SIZE(ds_encoded, 40);
DS_FIELD(ds_encoded, struct_size, 0, 4);
DS_FIELD(ds_encoded, data, 8, 8);
DS_FIELD(ds_encoded, size, 16, 8);
DS_FIELD(ds_encoded, codec, 24, 4);
DS_FIELD(ds_encoded, width, 28, 4);
DS_FIELD(ds_encoded, height, 32, 4);
DS_FIELD(ds_encoded, quality, 36, 4);

DS_SIZE(ds_encoder_vtable, 40);
DS_FIELD(ds_encoder_vtable, struct_size, 0, 4);
DS_FIELD(ds_encoder_vtable, codec, 4, 4);
DS_FIELD(ds_encoder_vtable, create, 8, 8);
DS_FIELD(ds_encoder_vtable, destroy, 16, 8);
DS_FIELD(ds_encoder_vtable, encode, 24, 8);
DS_FIELD(ds_encoder_vtable, release_output, 32, 8);

DS_SIZE(ds_client_record, 72);
DS_FIELD(ds_client_record, struct_size, 0, 4);
DS_FIELD(ds_client_record, client_id, 8, 8);
DS_FIELD(ds_client_record, name, 16, 8);
DS_FIELD(ds_client_record, hostname, 24, 8);
DS_FIELD(ds_client_record, instance_id, 32, 8);
DS_FIELD(ds_client_record, monitors_json, 40, 8);
DS_FIELD(ds_client_record, capabilities_json, 48, 8);
DS_FIELD(ds_client_record, connected_at_ms, 56, 8);
DS_FIELD(ds_client_record, last_ping_ms, 64, 8);

DS_SIZE(ds_command_record, 112);
DS_FIELD(ds_command_record, struct_size, 0, 4);
DS_FIELD(ds_command_record, id, 8, 8);
DS_FIELD(ds_command_record, client_id, 16, 8);
DS_FIELD(ds_command_record, command_type, 24, 8);
DS_FIELD(ds_command_record, command_data_json, 32, 8);
DS_FIELD(ds_command_record, target_instance_id, 40, 8);
DS_FIELD(ds_command_record, status, 48, 8);
DS_FIELD(ds_command_record, result_json, 56, 8);
DS_FIELD(ds_command_record, origin, 64, 8);
DS_FIELD(ds_command_record, created_at_ms, 72, 8);
DS_FIELD(ds_command_record, delivered_at_ms, 80, 8);
DS_FIELD(ds_command_record, completed_at_ms, 88, 8);
DS_FIELD(ds_command_record, claimed_until_ms, 96, 8);
DS_FIELD(ds_command_record, attempts, 104, 4);

DS_SIZE(ds_instance_record, 40);
DS_FIELD(ds_instance_record, struct_size, 0, 4);
DS_FIELD(ds_instance_record, instance_id, 8, 8);
DS_FIELD(ds_instance_record, public_url, 16, 8);
DS_FIELD(ds_instance_record, started_at_ms, 24, 8);
DS_FIELD(ds_instance_record, last_seen_ms, 32, 8);

DS_SIZE_AT_LEAST(ds_store_vtable, 144);
DS_FIELD(ds_store_vtable, struct_size, 0, 4);
DS_FIELD(ds_store_vtable, create, 8, 8);
DS_FIELD(ds_store_vtable, destroy, 16, 8);
DS_FIELD(ds_store_vtable, check, 24, 8);
DS_FIELD(ds_store_vtable, register_client, 32, 8);
DS_FIELD(ds_store_vtable, touch_client, 40, 8);
DS_FIELD(ds_store_vtable, unregister_client, 48, 8);
DS_FIELD(ds_store_vtable, list_clients, 56, 8);
DS_FIELD(ds_store_vtable, reap_clients, 64, 8);
DS_FIELD(ds_store_vtable, unregister_instance_clients, 72, 8);
DS_FIELD(ds_store_vtable, upsert_instance, 80, 8);
DS_FIELD(ds_store_vtable, list_instances, 88, 8);
DS_FIELD(ds_store_vtable, enqueue_command, 96, 8);
DS_FIELD(ds_store_vtable, claim_commands, 104, 8);
DS_FIELD(ds_store_vtable, complete_command, 112, 8);
DS_FIELD(ds_store_vtable, get_command, 120, 8);
DS_FIELD(ds_store_vtable, expire_commands, 128, 8);
DS_FIELD(ds_store_vtable, poll_notifications, 136, 8);

DS_SIZE(ds_plugin_descriptor, 88);
DS_FIELD(ds_plugin_descriptor, struct_size, 0, 4);
DS_FIELD(ds_plugin_descriptor, abi_major, 4, 2);
DS_FIELD(ds_plugin_descriptor, abi_minor, 6, 2);
DS_FIELD(ds_plugin_descriptor, kind, 8, 4);
DS_FIELD(ds_plugin_descriptor, name, 16, 8);
DS_FIELD(ds_plugin_descriptor, version, 24, 8);
DS_FIELD(ds_plugin_descriptor, description, 32, 8);
DS_FIELD(ds_plugin_descriptor, license, 40, 8);
DS_FIELD(ds_plugin_descriptor, vendor, 48, 8);
DS_FIELD(ds_plugin_descriptor, rank, 56, 4);
DS_FIELD(ds_plugin_descriptor, config_keys, 64, 8);
DS_FIELD(ds_plugin_descriptor, config_key_count, 72, 4);
DS_FIELD(ds_plugin_descriptor, vtable, 80, 8);

#if DS_ABI_MINOR == 0
DS_SIZE(ds_store_vtable, 144);
#endif
#else
#error "the frozen ABI 1.0 layouts are recorded for x86-64 Linux; add this platform's numbers"
#endif

int main(void) {
    printf("plugin ABI %d.%d: the layouts of the 16 ABI 1.0 structs are unchanged\n", DS_ABI_MAJOR,
           DS_ABI_MINOR);
    return 0;
}
