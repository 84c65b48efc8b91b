# Owned by the policy/geo work: geolocation micro benchmark (build/bin/authd-geo-bench).
add_executable(authd-geo-bench ${CMAKE_CURRENT_SOURCE_DIR}/geo_bench.c)
target_link_libraries(authd-geo-bench PRIVATE authd_core)
