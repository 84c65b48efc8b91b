# Owned by the policy/geo work: append its sources to AUTHD_CORE_SOURCES.
