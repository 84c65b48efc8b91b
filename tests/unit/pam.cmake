# pam_authd: the option parser and the flow against a scripted fake authd
# (cmocka, the logic linked directly as pam-u2f does) and a
# check of the built module: dlopen()s build/lib/security/pam_authd.so and
# proves only pam_sm_* leave it. Included from tests/CMakeLists.txt.
if(TARGET pam_authd_logic AND TARGET pam_authd)
  authd_unit_test(test_pam_args SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_pam_args.c LIBS pam_authd_logic)
  authd_unit_test(test_pam_flow SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_pam_flow.c LIBS pam_authd_logic)
  authd_unit_test(test_pam_module SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_pam_module.c LIBS ${CMAKE_DL_LIBS})
  target_compile_definitions(test_pam_module PRIVATE PAM_AUTHD_MODULE="$<TARGET_FILE:pam_authd>")
  add_dependencies(test_pam_module pam_authd)
  set_tests_properties(test_pam_args test_pam_flow test_pam_module PROPERTIES LABELS "pam")
endif()
