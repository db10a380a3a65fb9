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
