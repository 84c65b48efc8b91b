# Core unit tests: one file per module.
authd_unit_test(test_proto SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_proto.c)
authd_unit_test(test_token SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_token.c)
authd_unit_test(test_audit SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_audit.c)
authd_unit_test(test_util SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_util.c)
authd_unit_test(test_store SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_store.c LIBS Threads::Threads)
# the store's WAL flush, counted and failed on demand by the test
target_link_options(test_store PRIVATE -Wl,--wrap=fdatasync)
authd_unit_test(test_walvfs SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_walvfs.c)
authd_unit_test(test_client SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_client.c LIBS authd_client_static Threads::Threads)
# the request and reply buffers, checked for wiping as the library frees them
target_link_options(test_client PRIVATE -Wl,--wrap=free)
