# Install layout and the exported CMake package `deskstream` (docs/embedding.md, docs/plugins.md).
#
#   bin/deskstream                         the host executable
#   lib/deskstream/plugins/*.so            the in-tree plugins ([host] plugins.path default)
#   share/deskstream/web/                  viewer and dashboard ([relay] web_root default)
#   share/deskstream/examples/deskstream.ini
#   include/deskstream/...                 SDK (plugin.h, plugin.hpp) and host headers
#   lib/libdeskstream_*.a                  host, relay, agent and core libraries (embedding)
#   lib/cmake/deskstream/                  deskstreamConfig.cmake, version file, targets
#
# The package version is the plugin ABI version (DS_ABI_MAJOR.DS_ABI_MINOR of plugin.h) with
# SameMajorVersion compatibility: find_package(deskstream 1.1) accepts any 1.x host with x >= 1,
# exactly the rule the host applies when it loads a plugin.
include(CMakePackageConfigHelpers)

set(DESKSTREAM_INSTALL_PLUGIN_DIR "lib/deskstream/plugins")
set(DESKSTREAM_INSTALL_WEB_DIR "share/deskstream/web")
set(DESKSTREAM_INSTALL_CMAKE_DIR "lib/cmake/deskstream")

file(STRINGS "${PROJECT_SOURCE_DIR}/sdk/include/deskstream/plugin.h" _ds_abi
     REGEX "^#define DS_ABI_(MAJOR|MINOR) [0-9]+")
string(REGEX REPLACE ".*DS_ABI_MAJOR ([0-9]+).*" "\\1" _ds_abi_major "${_ds_abi}")
string(REGEX REPLACE ".*DS_ABI_MINOR ([0-9]+).*" "\\1" _ds_abi_minor "${_ds_abi}")
set(DESKSTREAM_SDK_VERSION "${_ds_abi_major}.${_ds_abi_minor}")

# The web files also land in the build tree at the place the installed layout has them, so the
# default [relay] web_root ({exe_dir}/../share/deskstream/web) works from a build folder too.
add_custom_target(deskstream_web ALL
  COMMAND ${CMAKE_COMMAND} -E copy_directory "${PROJECT_SOURCE_DIR}/web"
          "${CMAKE_BINARY_DIR}/${DESKSTREAM_INSTALL_WEB_DIR}"
  COMMENT "Copying web/ to ${DESKSTREAM_INSTALL_WEB_DIR}" VERBATIM)

# ---- runtime
# deskstream_runtime: just what `deskstream` needs to run (executable, plugins, web files), no
# tests or benchmarks; scripts/run.sh builds this target only.
get_property(_ds_plugins GLOBAL PROPERTY DESKSTREAM_PLUGINS)
add_custom_target(deskstream_runtime)
add_dependencies(deskstream_runtime deskstream_web ${_ds_plugins})
if(TARGET deskstream)
  add_dependencies(deskstream deskstream_web)
  add_dependencies(deskstream_runtime deskstream)
  install(TARGETS deskstream RUNTIME DESTINATION bin COMPONENT runtime)
endif()
if(_ds_plugins)
  install(TARGETS ${_ds_plugins} LIBRARY DESTINATION ${DESKSTREAM_INSTALL_PLUGIN_DIR} COMPONENT runtime)
endif()
install(DIRECTORY "${PROJECT_SOURCE_DIR}/web/" DESTINATION ${DESKSTREAM_INSTALL_WEB_DIR} COMPONENT runtime)
install(FILES "${PROJECT_SOURCE_DIR}/examples/deskstream.ini"
        DESTINATION share/deskstream/examples COMPONENT runtime)

# ---- development: SDK always; the host libraries when the host is part of this build.
set_target_properties(deskstream_sdk PROPERTIES EXPORT_NAME sdk)
install(TARGETS deskstream_sdk EXPORT deskstreamSdkTargets COMPONENT dev)
install(EXPORT deskstreamSdkTargets NAMESPACE deskstream:: DESTINATION ${DESKSTREAM_INSTALL_CMAKE_DIR}
        COMPONENT dev)

set(DESKSTREAM_HAS_HOST_PACKAGE OFF)
if(TARGET deskstream_host AND TARGET deskstream_relay AND TARGET deskstream_core)
  set(DESKSTREAM_HAS_HOST_PACKAGE ON)
  set(_ds_host_libs deskstream_host deskstream_relay deskstream_core)
  # The agent runtime, when it is a library of its own.
  foreach(t deskstream_host_base deskstream_agent)
    if(TARGET ${t})
      list(APPEND _ds_host_libs ${t})
    endif()
  endforeach()
  foreach(t IN LISTS _ds_host_libs)
    string(REPLACE "deskstream_" "" _export_name "${t}")
    set_target_properties(${t} PROPERTIES EXPORT_NAME ${_export_name})
    # Installed headers all live under include/.
    target_include_directories(${t} INTERFACE $<INSTALL_INTERFACE:include>)
  endforeach()
  # Some targets declare their include folder as a plain source path; the export needs it
  # build-only.
  foreach(t IN LISTS _ds_host_libs)
    get_target_property(_inc ${t} INTERFACE_INCLUDE_DIRECTORIES)
    if(_inc)
      list(TRANSFORM _inc REPLACE "^(${PROJECT_SOURCE_DIR}/.*)$" "$<BUILD_INTERFACE:\\1>")
      set_target_properties(${t} PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "${_inc}")
    endif()
  endforeach()
  install(TARGETS ${_ds_host_libs} EXPORT deskstreamHostTargets
          ARCHIVE DESTINATION lib LIBRARY DESTINATION lib COMPONENT dev)
  install(EXPORT deskstreamHostTargets NAMESPACE deskstream:: DESTINATION ${DESKSTREAM_INSTALL_CMAKE_DIR}
          COMPONENT dev)
  foreach(dir core/include host/include host/relay/include host/agent/include)
    if(IS_DIRECTORY "${PROJECT_SOURCE_DIR}/${dir}")
      install(DIRECTORY "${PROJECT_SOURCE_DIR}/${dir}/" DESTINATION include COMPONENT dev
              FILES_MATCHING PATTERN "*.hpp" PATTERN "*.h")
    endif()
  endforeach()
endif()

configure_package_config_file("${PROJECT_SOURCE_DIR}/cmake/package/deskstreamConfig.cmake.in"
  "${CMAKE_BINARY_DIR}/package/deskstreamConfig.cmake"
  INSTALL_DESTINATION ${DESKSTREAM_INSTALL_CMAKE_DIR})
write_basic_package_version_file("${CMAKE_BINARY_DIR}/package/deskstreamConfigVersion.cmake"
  VERSION ${DESKSTREAM_SDK_VERSION} COMPATIBILITY SameMajorVersion)
install(FILES "${CMAKE_BINARY_DIR}/package/deskstreamConfig.cmake"
              "${CMAKE_BINARY_DIR}/package/deskstreamConfigVersion.cmake"
              "${PROJECT_SOURCE_DIR}/cmake/package/deskstreamPlugin.cmake"
        DESTINATION ${DESKSTREAM_INSTALL_CMAKE_DIR} COMPONENT dev)

# A package for the build tree (SDK only): plugins can be built against a checkout's build
# folder without installing, with -Ddeskstream_DIR=<build>/package-build.
set(_ds_build_pkg "${CMAKE_BINARY_DIR}/package-build")
export(EXPORT deskstreamSdkTargets NAMESPACE deskstream:: FILE "${_ds_build_pkg}/deskstreamSdkTargets.cmake")
configure_file("${PROJECT_SOURCE_DIR}/cmake/package/deskstreamPlugin.cmake"
               "${_ds_build_pkg}/deskstreamPlugin.cmake" COPYONLY)
file(WRITE "${_ds_build_pkg}/deskstreamConfig.cmake"
     "# deskstream SDK from a build tree (generated by cmake/DeskstreamInstall.cmake).\n"
     "set(deskstream_SDK_VERSION \"${DESKSTREAM_SDK_VERSION}\")\n"
     "set(deskstream_PLUGIN_DIR \"${DESKSTREAM_PLUGIN_DIR}\")\n"
     "include(\"\${CMAKE_CURRENT_LIST_DIR}/deskstreamSdkTargets.cmake\")\n"
     "include(\"\${CMAKE_CURRENT_LIST_DIR}/deskstreamPlugin.cmake\")\n"
     "set(deskstream_sdk_FOUND TRUE)\n")
write_basic_package_version_file("${_ds_build_pkg}/deskstreamConfigVersion.cmake"
  VERSION ${DESKSTREAM_SDK_VERSION} COMPATIBILITY SameMajorVersion)

# ---- Debian package (scripts/package.sh; docs/embedding.md "Debian package")
# Component `deb` holds what only the package installs (absolute paths: the unit, the
# configuration, the Debian docs); EXCLUDE_FROM_ALL keeps it out of a plain `cmake --install`.
set(_ds_deb "${PROJECT_SOURCE_DIR}/packaging/debian")
install(FILES "${_ds_deb}/deskstream.service" DESTINATION /lib/systemd/system COMPONENT deb EXCLUDE_FROM_ALL)
install(FILES "${PROJECT_SOURCE_DIR}/examples/deskstream.ini" DESTINATION /etc/deskstream
        COMPONENT deb EXCLUDE_FROM_ALL)
install(FILES "${_ds_deb}/copyright" "${PROJECT_SOURCE_DIR}/README.md"
        DESTINATION /usr/share/doc/deskstream COMPONENT deb EXCLUDE_FROM_ALL)
set(_ds_changelog_gz "${CMAKE_BINARY_DIR}/package/changelog.gz") # native package: changelog.gz
file(MAKE_DIRECTORY "${CMAKE_BINARY_DIR}/package")
execute_process(COMMAND gzip -9 -n -c "${_ds_deb}/changelog" OUTPUT_FILE "${_ds_changelog_gz}")
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS "${_ds_deb}/changelog")
install(FILES "${_ds_changelog_gz}" DESTINATION /usr/share/doc/deskstream COMPONENT deb EXCLUDE_FROM_ALL)

set(CPACK_GENERATOR "DEB")
set(CPACK_PACKAGE_NAME "deskstream")
set(CPACK_PACKAGE_VERSION "${PROJECT_VERSION}")
set(CPACK_PACKAGE_VENDOR "deskstream")
set(CPACK_PACKAGE_CONTACT "deskstream maintainers <maintainers@deskstream.invalid>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "stream desktops to web browsers")
set(CPACK_PACKAGE_DESCRIPTION "deskstream captures and encodes screens (agent) and fans the frames\nout to browser viewers over WebSocket (relay). This package runs both as a\nsystemd service with its state in /var/lib/deskstream and its configuration\nin /etc/deskstream/deskstream.ini.")
set(CPACK_PACKAGING_INSTALL_PREFIX "/usr")
set(CPACK_STRIP_FILES ON)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_GROUPING ALL_COMPONENTS_IN_ONE)
set(CPACK_COMPONENTS_ALL runtime deb)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION "net")
set(CPACK_DEBIAN_PACKAGE_PRIORITY "optional")
set(CPACK_DEBIAN_PACKAGE_HOMEPAGE "https://deskstream.invalid/")
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "adduser")
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA "${_ds_deb}/postinst;${_ds_deb}/prerm;${_ds_deb}/postrm;${_ds_deb}/conffiles")
include(CPack)
