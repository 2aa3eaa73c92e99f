# Shared build helpers. Every project target calls deskstream_target_defaults().

# Folder where all plugins land, so the host and tests find them without installation.
set(DESKSTREAM_PLUGIN_DIR "${CMAKE_BINARY_DIR}/plugins" CACHE INTERNAL "")

if(DESKSTREAM_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
endif()

function(deskstream_target_defaults target)
  target_compile_options(${target} PRIVATE -Wall -Wextra)
  if(DESKSTREAM_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()

# deskstream_add_plugin(<kind> <name> SOURCES ... [LIBS ...])
# Builds deskstream_<kind>_<name>.so into ${DESKSTREAM_PLUGIN_DIR}. Plugins link only the SDK
# (header-only) and their own libraries, never core/ or host/.
function(deskstream_add_plugin kind name)
  cmake_parse_arguments(P "" "" "SOURCES;LIBS;INCLUDES" ${ARGN})
  set(target deskstream_${kind}_${name})
  add_library(${target} MODULE ${P_SOURCES})
  target_link_libraries(${target} PRIVATE deskstream::sdk ${P_LIBS})
  if(P_INCLUDES)
    target_include_directories(${target} PRIVATE ${P_INCLUDES})
  endif()
  set_target_properties(${target} PROPERTIES
    PREFIX ""
    OUTPUT_NAME ${target}
    LIBRARY_OUTPUT_DIRECTORY "${DESKSTREAM_PLUGIN_DIR}"
    C_VISIBILITY_PRESET hidden
    CXX_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON)
  # A plugin must resolve all its symbols itself.
  if(NOT DESKSTREAM_SANITIZE)
    target_link_options(${target} PRIVATE -Wl,--no-undefined)
  endif()
  deskstream_target_defaults(${target})
  set_property(GLOBAL APPEND PROPERTY DESKSTREAM_PLUGINS ${target})
endfunction()
