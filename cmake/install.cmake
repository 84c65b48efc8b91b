# Install layout (docs/deploy/README.md). Destinations are relative to the
# prefix so that `cmake --install build --prefix /usr` decides it at install
# time; DESTDIR stages the tree for a package.
#
#   sbin/authd                              the daemon
#   bin/authctl                             the admin/client CLI
#   lib/authd/plugins/{fido2,face}.so       plugins (0644: plugin.c refuses group/other-writable files)
#   share/authd/models/*.onnx               face models, when fetched (scripts/fetch-models.sh)
#   share/authd/authd.conf                  a starting configuration naming the two directories above
#   lib/<multiarch>/security/pam_authd.so   PAM module (Debian's PAM directory)
#   libexec/authd/authd-capture             the PAM module's camera helper (with OpenCV)
#   lib/libauthd-client.so*, include/authd_client.h
#   share/doc/authd/*.md
#
# The daemon's compiled-in plugin and model directories are the build tree's
# (DESIGN.md section 3): an installed authd reads the installed ones from
# [plugins] dir and [face] models_dir, which share/authd/authd.conf sets.
include(GNUInstallDirs)

set(AUTHD_INSTALL_PLUGINDIR "lib/authd/plugins" CACHE STRING
  "Plugin directory, relative to the install prefix (or absolute)")
set(AUTHD_INSTALL_MODELSDIR "${CMAKE_INSTALL_DATADIR}/authd/models" CACHE STRING
  "Face model directory, relative to the install prefix (or absolute)")
if(CMAKE_LIBRARY_ARCHITECTURE)
  set(_authd_pamdir "lib/${CMAKE_LIBRARY_ARCHITECTURE}/security")
else()
  set(_authd_pamdir "${CMAKE_INSTALL_LIBDIR}/security")
endif()
set(AUTHD_INSTALL_PAMDIR "${_authd_pamdir}" CACHE STRING
  "PAM module directory, relative to the install prefix (or absolute); Debian: lib/<multiarch>/security")
unset(_authd_pamdir)

# Directories the install creates (the plugin directory among them) are
# 0755 whatever the umask: a plugin directory writable by others would let
# them swap a checked plugin file (docs/security.md, "Plugin loading").
set(CMAKE_INSTALL_DEFAULT_DIRECTORY_PERMISSIONS
  OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE WORLD_READ WORLD_EXECUTE)

set(AUTHD_INSTALL_FILE_MODE OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)

# Rules that belong to no target: run after the subdirectories' rules.
function(authd_install_data)
  # Face models: never committed, fetched (pinned SHA-256) into the build
  # tree by scripts/fetch-models.sh (the face_models test fixture runs it).
  # Installed when all four are there; otherwise the install says how to
  # fetch them into the installed directory. face.so checks every hash again
  # when it loads them.
  set(models fr_detect.onnx fr_landmark.onnx fr_feature.onnx fr_liveness.onnx)
  install(CODE "
    set(_src \"${AUTHD_MODELS_DIR}\")
    set(_dst \"${AUTHD_INSTALL_MODELSDIR}\")
    if(NOT IS_ABSOLUTE \"\${_dst}\")
      set(_dst \"\${CMAKE_INSTALL_PREFIX}/\${_dst}\")
    endif()
    set(_files)
    set(_missing)
    foreach(_m ${models})
      if(EXISTS \"\${_src}/\${_m}\")
        list(APPEND _files \"\${_src}/\${_m}\")
      else()
        list(APPEND _missing \${_m})
      endif()
    endforeach()
    if(_missing)
      list(JOIN _missing \", \" _missing)
      message(WARNING \"authd: face models not installed (\${_missing} missing in \${_src}). \"
        \"Fetch them into the installed directory: \"
        \"${PROJECT_SOURCE_DIR}/scripts/fetch-models.sh \$ENV{DESTDIR}\${_dst}\")
    else()
      file(INSTALL DESTINATION \"\${_dst}\" TYPE FILE
        PERMISSIONS ${AUTHD_INSTALL_FILE_MODE} FILES \${_files})
    endif()
  " COMPONENT Runtime)

  # A starting configuration naming the installed plugin and model
  # directories, written with the prefix the install runs with.
  install(CODE "
    set(_plug \"${AUTHD_INSTALL_PLUGINDIR}\")
    set(_models \"${AUTHD_INSTALL_MODELSDIR}\")
    foreach(_v _plug _models)
      if(NOT IS_ABSOLUTE \"\${\${_v}}\")
        set(\${_v} \"\${CMAKE_INSTALL_PREFIX}/\${\${_v}}\")
      endif()
    endforeach()
    set(AUTHD_INSTALL_CONF_PLUGINDIR \"\${_plug}\")
    set(AUTHD_INSTALL_CONF_MODELSDIR \"\${_models}\")
    configure_file(\"${PROJECT_SOURCE_DIR}/cmake/authd.conf.in\" \"${CMAKE_BINARY_DIR}/install/authd.conf\" @ONLY)
    file(INSTALL DESTINATION \"\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_DATADIR}/authd\" TYPE FILE
      PERMISSIONS ${AUTHD_INSTALL_FILE_MODE} FILES \"${CMAKE_BINARY_DIR}/install/authd.conf\")
  " COMPONENT Runtime)

  # The docs the unit's Documentation= and the guides point to.
  file(GLOB docs ${PROJECT_SOURCE_DIR}/docs/*.md)
  install(FILES ${docs} DESTINATION ${CMAKE_INSTALL_DOCDIR} PERMISSIONS ${AUTHD_INSTALL_FILE_MODE} COMPONENT Runtime)
  install(FILES ${PROJECT_SOURCE_DIR}/docs/deploy/README.md ${PROJECT_SOURCE_DIR}/docs/deploy/authd.service
    ${PROJECT_SOURCE_DIR}/docs/deploy/authd.socket
    DESTINATION ${CMAKE_INSTALL_DOCDIR}/deploy PERMISSIONS ${AUTHD_INSTALL_FILE_MODE} COMPONENT Runtime)
endfunction()
