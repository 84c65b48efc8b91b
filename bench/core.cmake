# authd-bench: load generator that drives a running authd over its socket
# (issue 2 "Performance"; see bench/run-assess.sh and docs/performance.md).
add_executable(authd-bench ${CMAKE_CURRENT_LIST_DIR}/authd-bench.c)
target_include_directories(authd-bench PRIVATE ${PROJECT_SOURCE_DIR}/authd/client)
target_link_libraries(authd-bench PRIVATE authd_client_static PkgConfig::JANSSON Threads::Threads m)
# authd-step-bench: the CPU of one assess inside authd, step by step, with no
# socket and one worker: the floor under run-assess.sh's figure.
add_executable(authd-step-bench ${CMAKE_CURRENT_LIST_DIR}/step_bench.c)
target_link_libraries(authd-step-bench PRIVATE authd_core)
# Kept working by a short run in the test suite (not timed): every reply must be an allow.
add_test(NAME step_bench_smoke
         COMMAND authd-step-bench --config ${PROJECT_SOURCE_DIR}/bench/bench.conf --requests 200 --group 32)
# bench/ir-assess.sh (instructions per request under callgrind), kept working
# the same way; valgrind and the sanitizers do not mix.
find_program(AUTHD_VALGRIND_BIN valgrind)
if(AUTHD_VALGRIND_BIN AND NOT AUTHD_SANITIZE)
  add_test(NAME ir_assess_smoke COMMAND env REQUESTS=100 CUSTOMERS=100
           bash ${PROJECT_SOURCE_DIR}/bench/ir-assess.sh ${CMAKE_BINARY_DIR})
endif()
