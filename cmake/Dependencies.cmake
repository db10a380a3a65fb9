# Every dependency is a Debian 12 package installed by scripts/bootstrap.
find_package(PkgConfig REQUIRED)
find_package(Threads REQUIRED)
find_package(fmt REQUIRED)
find_package(nlohmann_json 3.11 REQUIRED)
find_package(CLI11 REQUIRED)

# libarchive: headers here, the library opened at run time.
pkg_check_modules(CURL REQUIRED IMPORTED_TARGET libcurl)
pkg_check_modules(ARCHIVE REQUIRED IMPORTED_TARGET libarchive)
pkg_check_modules(ZSTD REQUIRED IMPORTED_TARGET libzstd)
pkg_check_modules(NETTLE REQUIRED IMPORTED_TARGET nettle)
pkg_check_modules(LUA REQUIRED IMPORTED_TARGET lua5.4)
pkg_check_modules(ACL REQUIRED IMPORTED_TARGET libacl)

# Debian's libzookeeper-mt ships neither pkg-config nor CMake files.
find_path(ZOOKEEPER_INCLUDE_DIR zookeeper/zookeeper.h REQUIRED)
find_library(ZOOKEEPER_LIBRARY zookeeper_mt REQUIRED)
add_library(zookeeper_mt INTERFACE)
target_include_directories(zookeeper_mt SYSTEM INTERFACE ${ZOOKEEPER_INCLUDE_DIR})
target_link_libraries(zookeeper_mt INTERFACE ${ZOOKEEPER_LIBRARY})
target_compile_definitions(zookeeper_mt INTERFACE THREADED)

# mimalloc replaces glibc's malloc in the `kiln` executable (not in
# kiln-agent, which the install environment carries with its libraries).
# The coordination store allocates a request's pieces on its log thread and
# frees them on the commit and HTTP threads; glibc's per-thread caches do not
# return such frees to the allocating thread, which then takes its arena's
# lock and splits and merges chunks for nearly every allocation (a fifth to
# a quarter of the server's samples). Measured in docs/BENCHMARKS.md. The
# sanitizers bring their own allocator, so a sanitized build keeps glibc's.
if(KILN_MIMALLOC AND NOT KILN_SANITIZE)
  find_package(mimalloc 2.0 REQUIRED CONFIG)
  set(KILN_WITH_MIMALLOC ON)
endif()
