# deskstream_add_plugin(): builds a deskstream plugin from an installed SDK (docs/plugins.md).
#
#   deskstream_add_plugin(<kind> <name> SOURCES <files>... [LIBS <libs>...] [STATIC])
#
# <kind> is capture, encoder or store. Without STATIC: a loadable module
# deskstream_<kind>_<name>.so that exports only deskstream_plugin_entry (hidden visibility,
# no undefined symbols), to be copied into a folder of [host] plugins.path. With STATIC: a static
# library of the same sources compiled with DESKSTREAM_PLUGIN_STATIC, for linking into a program
# that embeds the host; register it there with DESKSTREAM_PLUGIN_STATIC_REGISTER(<name>)
# (docs/embedding.md). The target is named deskstream_<kind>_<name> (plus _static with STATIC).
function(deskstream_add_plugin kind name)
  cmake_parse_arguments(P "STATIC" "" "SOURCES;LIBS" ${ARGN})
  if(NOT kind MATCHES "^(capture|encoder|store)$")
    message(FATAL_ERROR "deskstream_add_plugin: kind must be capture, encoder or store, not '${kind}'")
  endif()
  if(NOT name MATCHES "^[a-z0-9_]+$")
    message(FATAL_ERROR "deskstream_add_plugin: name '${name}' must match [a-z0-9_]+")
  endif()
  set(target deskstream_${kind}_${name})
  if(P_STATIC)
    set(target ${target}_static)
    add_library(${target} STATIC ${P_SOURCES})
    target_compile_definitions(${target} PUBLIC DESKSTREAM_PLUGIN_STATIC)
    target_link_libraries(${target} PUBLIC deskstream::sdk ${P_LIBS})
  else()
    add_library(${target} MODULE ${P_SOURCES})
    target_link_libraries(${target} PRIVATE deskstream::sdk ${P_LIBS})
    set_target_properties(${target} PROPERTIES PREFIX "" OUTPUT_NAME deskstream_${kind}_${name})
    if(CMAKE_SYSTEM_NAME STREQUAL "Linux")
      target_link_options(${target} PRIVATE -Wl,--no-undefined)
    endif()
  endif()
  set_target_properties(${target} PROPERTIES
    C_VISIBILITY_PRESET hidden CXX_VISIBILITY_PRESET hidden VISIBILITY_INLINES_HIDDEN ON
    POSITION_INDEPENDENT_CODE ON)
endfunction()
