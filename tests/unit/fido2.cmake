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
  foreach(t verify enroll)
    authd_unit_test(test_fido2_${t}
      SOURCES ${_fido2_unit}/test_fido2_${t}.c ${_fido2_unit}/test_fido2_harness.c
      LIBS softkey PkgConfig::JANSSON PkgConfig::CBOR OpenSSL::Crypto ${CMAKE_DL_LIBS})
    target_include_directories(test_fido2_${t} PRIVATE ${_fido2_unit} ${PROJECT_SOURCE_DIR}/plugins)
    add_dependencies(test_fido2_${t} fido2_plugin)
    set_tests_properties(test_fido2_${t} PROPERTIES LABELS "fido2" TIMEOUT 600)
  endforeach()
endif()
