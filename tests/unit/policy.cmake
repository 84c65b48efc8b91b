# Owned by the policy/geo work: unit tests for policy.c, geo.c and txn.c.
authd_unit_test(test_policy SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_policy.c)
foreach(t geo txn)
  if(EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_${t}.c)
    authd_unit_test(test_${t} SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_${t}.c)
  endif()
endforeach()
