#include "common/file_util.h"

#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include "tests/support/temp_dir.h"

using namespace kiln;
using kiln::test::TempDir;

TEST_CASE("WriteFileAtomic replaces content with the exact mode and leaves no temp file") {
  TempDir t;
  std::string p = t.Sub("token");
  REQUIRE(WriteFileAtomic(p, "one", 0600).ok());
  REQUIRE(WriteFileAtomic(p, "two", 0600).ok());
  CHECK(*ReadFile(p) == "two");
  struct stat st {};
  REQUIRE(stat(p.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  CHECK(access((p + ".tmp." + std::to_string(getpid())).c_str(), F_OK) != 0);
}

TEST_CASE("ReadFile of a missing file is NotFound naming the path") {
  TempDir t;
  auto r = ReadFile(t.Sub("nope"));
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == Code::kNotFound);
  CHECK(r.status().message().find(t.Sub("nope")) != std::string::npos);
}

TEST_CASE("MakeDirs creates nested directories and refuses a file in the way") {
  TempDir t;
  CHECK(MakeDirs(t.Sub("a/b/c")).ok());
  CHECK(MakeDirs(t.Sub("a/b/c")).ok());
  test::WriteTestFile(t.Sub("f"), "x");
  auto s = MakeDirs(t.Sub("f/g"));
  CHECK_FALSE(s.ok());
  CHECK(s.message().find("f/g") != std::string::npos);
}

TEST_CASE("FileLock is exclusive and names the holder") {
  TempDir t;
  auto first = FileLock::Acquire(t.Sub("lock"));
  REQUIRE(first.ok());
  auto second = FileLock::Acquire(t.Sub("lock"));
  REQUIRE_FALSE(second.ok());
  CHECK(second.status().code() == Code::kUnavailable);
  CHECK(second.status().message().find("process " + std::to_string(getpid())) !=
        std::string::npos);
  { auto moved = std::move(*first); }
  CHECK(FileLock::Acquire(t.Sub("lock")).ok());
}
