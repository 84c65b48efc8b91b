# Face plugin tests: they dlopen the built face.so and call it only through
# its exported ABI struct. The models are fetched (idempotent, pinned
# SHA-256) by the face_models fixture into the build's model directory.
if(TARGET face_plugin)
  add_test(NAME face_models
    COMMAND ${PROJECT_SOURCE_DIR}/scripts/fetch-models.sh ${AUTHD_MODELS_DIR})
  set_tests_properties(face_models PROPERTIES FIXTURES_SETUP face_models_fx)

  authd_unit_test(test_face SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_face.c LIBS ${CMAKE_DL_LIBS})
  target_compile_definitions(test_face PRIVATE AUTHD_TEST_PLUGIN="${AUTHD_PLUGIN_DIR}/face.so")
  add_dependencies(test_face face_plugin)
  set_tests_properties(test_face PROPERTIES FIXTURES_REQUIRED face_models_fx TIMEOUT 600)

  authd_unit_test(test_face_inputs SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_face_inputs.c LIBS ${CMAKE_DL_LIBS})
  target_compile_definitions(test_face_inputs PRIVATE AUTHD_TEST_PLUGIN="${AUTHD_PLUGIN_DIR}/face.so")
  add_dependencies(test_face_inputs face_plugin)
  set_tests_properties(test_face_inputs PROPERTIES FIXTURES_REQUIRED face_models_fx TIMEOUT 600)
endif()

find_package(ZLIB)
if(TARGET face_plugin AND ZLIB_FOUND)
  authd_unit_test(test_face_quality SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_face_quality.c
    LIBS ${CMAKE_DL_LIBS} ZLIB::ZLIB)
  target_compile_definitions(test_face_quality PRIVATE AUTHD_TEST_PLUGIN="${AUTHD_PLUGIN_DIR}/face.so")
  add_dependencies(test_face_quality face_plugin)
  set_tests_properties(test_face_quality PROPERTIES FIXTURES_REQUIRED face_models_fx TIMEOUT 600)
endif()
