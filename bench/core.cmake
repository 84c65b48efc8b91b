# authd-bench: load generator that drives a running authd over its socket
# (issue 2 "Performance"; see bench/run-assess.sh and docs/performance.md).
add_executable(authd-bench ${CMAKE_CURRENT_LIST_DIR}/authd-bench.c)
target_include_directories(authd-bench PRIVATE ${PROJECT_SOURCE_DIR}/authd/client)
target_link_libraries(authd-bench PRIVATE authd_client_static PkgConfig::JANSSON Threads::Threads m)
