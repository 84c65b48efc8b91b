# FIDO2 plugin tests: the bounded reader, and the plugin driven through its
# ABI (dlopen of build/lib/authd/plugins/fido2.so) with the soft
# authenticator. Included from tests/CMakeLists.txt.
set(_fido2_unit ${CMAKE_CURRENT_SOURCE_DIR}/unit)

# buf.c moves into authd_core later; compile it here only until then.
get_target_property(_core_sources authd_core SOURCES)
set(_buf_src)
if(NOT "buf.c" IN_LIST _core_sources)
  set(_buf_src ${PROJECT_SOURCE_DIR}/authd/buf.c)
endif()
authd_unit_test(test_buf SOURCES ${_fido2_unit}/test_buf.c ${_buf_src})

if(TARGET softkey AND TARGET fido2_plugin)
  foreach(t verify enroll softdev)
    authd_unit_test(test_fido2_${t}
      SOURCES ${_fido2_unit}/test_fido2_${t}.c ${_fido2_unit}/test_fido2_harness.c
      LIBS softkey PkgConfig::JANSSON PkgConfig::CBOR OpenSSL::Crypto ${CMAKE_DL_LIBS})
    target_include_directories(test_fido2_${t} PRIVATE ${_fido2_unit} ${PROJECT_SOURCE_DIR}/plugins)
    add_dependencies(test_fido2_${t} fido2_plugin)
    set_tests_properties(test_fido2_${t} PROPERTIES LABELS "fido2" TIMEOUT 600)
  endforeach()
  # Plain libfido2 client for the LD_PRELOAD soft-key test (not a test itself).
  add_executable(test_fido2_preload_client ${_fido2_unit}/test_fido2_preload_client.c)
  target_link_libraries(test_fido2_preload_client PRIVATE authd_core PkgConfig::FIDO2 PkgConfig::CBOR
    PkgConfig::JANSSON)
  set_target_properties(test_fido2_preload_client PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
  add_dependencies(test_fido2_softdev test_fido2_preload_client softdev_preload)

  # The key cache is internal: compiled into the test from the plugin's sources.
  set(_f2 ${PROJECT_SOURCE_DIR}/plugins/fido2)
  authd_unit_test(test_fido2_keycache
    SOURCES ${_fido2_unit}/test_fido2_keycache.c ${_fido2_unit}/test_fido2_harness.c
      ${_f2}/fido2_keycache.c ${_f2}/fido2_cose.c ${_f2}/fido2_cbor.c ${_buf_src}
    LIBS softkey PkgConfig::FIDO2 PkgConfig::JANSSON PkgConfig::CBOR OpenSSL::Crypto Threads::Threads
      ${CMAKE_DL_LIBS})
  target_include_directories(test_fido2_keycache PRIVATE ${_fido2_unit} ${_f2} ${PROJECT_SOURCE_DIR}/plugins)
  add_dependencies(test_fido2_keycache fido2_plugin)
  set_tests_properties(test_fido2_keycache PROPERTIES LABELS "fido2" TIMEOUT 600)
endif()
