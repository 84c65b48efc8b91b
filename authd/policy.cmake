# Owned by the policy/geo work: append its sources to AUTHD_CORE_SOURCES.
list(APPEND AUTHD_CORE_SOURCES policy.c geo.c)
