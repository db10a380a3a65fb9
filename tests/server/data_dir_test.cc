#include "server/data_dir.h"

#include <sys/stat.h>

#include <catch2/catch.hpp>

#include "common/file_util.h"
#include "tests/support/temp_dir.h"

using namespace kiln;
using kiln::test::TempDir;

TEST_CASE("first open creates the directory and a private admin token") {
  TempDir t;
  std::string dir = t.Sub("data/nested");
  std::string token;
  {
    auto d = DataDir::Open(dir);
    REQUIRE(d.ok());
    token = d->admin_token();
    CHECK(token.size() == 64);
    struct stat st {};
    REQUIRE(stat((dir + "/admin.token").c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);
    REQUIRE(stat(dir.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0700);
  }
  auto again = DataDir::Open(dir);
  REQUIRE(again.ok());
  CHECK(again->admin_token() == token);  // kept across restarts
}

TEST_CASE("a second open of the same directory fails at once naming the holder") {
  TempDir t;
  auto first = DataDir::Open(t.path());
  REQUIRE(first.ok());
  auto second = DataDir::Open(t.path());
  REQUIRE_FALSE(second.ok());
  CHECK(second.status().code() == Code::kUnavailable);
  CHECK(second.status().message().find("another kiln serve is using " + t.path()) == 0);
}

TEST_CASE("a data directory that cannot be created or written is a clear error") {
  TempDir t;
  test::WriteTestFile(t.Sub("file"), "x");
  auto under_file = DataDir::Open(t.Sub("file/data"));
  REQUIRE_FALSE(under_file.ok());
  CHECK(under_file.status().message().find("cannot create data directory") == 0);

  // /proc refuses new files even to root.
  auto proc = DataDir::Open("/proc/self");
  REQUIRE_FALSE(proc.ok());
  CHECK(proc.status().message().find("data directory /proc/self is not writable") == 0);
  CHECK_FALSE(DataDir::Open("").ok());
}

TEST_CASE("a truncated token file is corruption, not a silent new token") {
  TempDir t;
  test::WriteTestFile(t.Sub("admin.token"), "short\n");
  auto d = DataDir::Open(t.path());
  REQUIRE_FALSE(d.ok());
  CHECK(d.status().code() == Code::kCorruption);
}
