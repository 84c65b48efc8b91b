# authd-face-bench: latency and throughput of the face plugin's full verify
# (see bench/face.sh and docs/face.md). Talks to face.so through its ABI.
if(TARGET face_plugin)
  add_executable(authd-face-bench ${CMAKE_CURRENT_LIST_DIR}/face_bench.c
    ${PROJECT_SOURCE_DIR}/authd/util.c ${PROJECT_SOURCE_DIR}/authd/err.c)
  target_include_directories(authd-face-bench PRIVATE ${PROJECT_SOURCE_DIR}/authd ${PROJECT_SOURCE_DIR}/plugins)
  target_compile_definitions(authd-face-bench PRIVATE
    AUTHD_BUILD_PLUGIN_DIR="${AUTHD_PLUGIN_DIR}"
    AUTHD_FACES_DEFAULT="${PROJECT_SOURCE_DIR}/../shared/faces/dev")
  target_link_libraries(authd-face-bench PRIVATE OpenSSL::Crypto Threads::Threads ${CMAKE_DL_LIBS})
  add_dependencies(authd-face-bench face_plugin)
endif()
