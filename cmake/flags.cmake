# Warning and hardening flags, as libfido2 builds (see STYLE.md).
set(AUTHD_C_WARNINGS
  -Wall -Wextra -Wshadow -Wcast-qual -Wwrite-strings -Wmissing-prototypes
  -Wimplicit-fallthrough -Wformat=2 -Wno-unused-parameter)
set(AUTHD_CXX_WARNINGS -Wall -Wextra -Wshadow -Wformat=2 -Wno-unused-parameter)
if(AUTHD_WERROR)
  list(APPEND AUTHD_C_WARNINGS -Werror)
  list(APPEND AUTHD_CXX_WARNINGS -Werror)
endif()
add_compile_options(
  "$<$<COMPILE_LANGUAGE:C>:${AUTHD_C_WARNINGS}>"
  "$<$<COMPILE_LANGUAGE:CXX>:${AUTHD_CXX_WARNINGS}>"
  -fstack-protector-strong -fno-strict-aliasing)
add_compile_definitions(_GNU_SOURCE)
if(NOT AUTHD_SANITIZE AND CMAKE_BUILD_TYPE MATCHES "Rel")
  add_compile_definitions(_FORTIFY_SOURCE=2)
endif()
add_link_options(-Wl,-z,relro -Wl,-z,now)
if(AUTHD_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
endif()
