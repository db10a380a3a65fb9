#include "common/shared_library.h"

#include <catch2/catch.hpp>
#include <cstring>

using kiln::Code;
using kiln::SharedLibrary;

TEST_CASE("a library opened at run time: its functions, and clear errors") {
  SECTION("a function is bound with its declared type and works") {
    auto libc = SharedLibrary::Open("libc.so.6", "libc6");
    REQUIRE(libc.ok());
    decltype(&::strlen) fn = nullptr;
    REQUIRE(libc->Bind("strlen", &fn).ok());
    CHECK(fn("kiln") == 4);
  }
  SECTION("a missing library names itself, its package and the loader's reason") {
    auto lib = SharedLibrary::Open("libkiln-no-such.so.7", "libkiln-no-such7");
    REQUIRE(!lib.ok());
    CHECK(lib.status().code() == Code::kFailedPrecondition);
    std::string m = lib.status().message();
    CHECK(m.find("libkiln-no-such.so.7") != std::string::npos);
    CHECK(m.find("Debian package libkiln-no-such7") != std::string::npos);
    CHECK(m.find("No such file") != std::string::npos);
  }
  SECTION("a missing function names the library and the function") {
    auto libc = SharedLibrary::Open("libc.so.6", "libc6");
    REQUIRE(libc.ok());
    void (*fn)() = nullptr;
    auto s = libc->Bind("kiln_no_such_function", &fn);
    REQUIRE(!s.ok());
    CHECK(s.message().find("libc.so.6 has no function kiln_no_such_function") != std::string::npos);
    CHECK(fn == nullptr);
  }
}

namespace {
struct LibcTable {
  decltype(&::strlen) strlen = nullptr;
};
kiln::Status BindLibc(const SharedLibrary& lib, LibcTable* t) {
  return lib.Bind("strlen", &t->strlen);
}

struct MissingTable {
  void (*fn)() = nullptr;
};
int missing_binds = 0;
kiln::Status BindMissing(const SharedLibrary&, MissingTable*) {
  ++missing_binds;
  return kiln::Status::Ok();
}
}  // namespace

TEST_CASE("a table of a library's functions is filled once and handed out after") {
  auto first = kiln::LoadTable<LibcTable>("libc.so.6", "libc6", BindLibc);
  REQUIRE(first.ok());
  auto again = kiln::LoadTable<LibcTable>("libc.so.6", "libc6", BindLibc);
  REQUIRE(again.ok());
  CHECK(*first == *again);
  CHECK(&kiln::Table<LibcTable>() == *first);
  CHECK(kiln::Table<LibcTable>().strlen("kiln") == 4);
  // A library that cannot be opened: the same error every time, and bind
  // never runs.
  for (int i = 0; i < 2; ++i) {
    auto bad =
        kiln::LoadTable<MissingTable>("libkiln-no-such.so.7", "libkiln-no-such7", BindMissing);
    REQUIRE(!bad.ok());
    CHECK(bad.status().message().find("libkiln-no-such.so.7") != std::string::npos);
  }
  CHECK(missing_binds == 0);
}
