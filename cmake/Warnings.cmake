# Warnings on and clean for every kiln target (not for third-party headers,
# which come in as SYSTEM includes).
add_compile_options(-Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor
                    -Wcast-align -Woverloaded-virtual -Wformat=2
                    -Wimplicit-fallthrough -Wno-missing-field-initializers)
if(KILN_WERROR)
  add_compile_options(-Werror)
endif()

if(KILN_SANITIZE)
  # -O1 keeps sanitizer builds quick to compile and run; GCC 12 reports
  # false maybe-uninitialized warnings inside libstdc++ under ASan.
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer
                      -fno-sanitize-recover=undefined -O1 -Wno-maybe-uninitialized)
  add_link_options(-fsanitize=address,undefined)
endif()

# GCC 12 at -O2/-O3 reports false -Wrestrict and -Wmaybe-uninitialized inside
# libstdc++'s std::string code (GCC PR105329, PR105562); they appear in any
# module that builds strings, so they are silenced for the optimised builds
# only and stay on in the Debug/sanitizer build the tests use.
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND NOT CMAKE_BUILD_TYPE STREQUAL "Debug")
  add_compile_options(-Wno-restrict -Wno-maybe-uninitialized)
endif()
