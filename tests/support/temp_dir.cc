#include "tests/support/temp_dir.h"

#include <stdlib.h>

#include <catch2/catch.hpp>
#include <filesystem>

#include "common/file_util.h"

namespace kiln::test {

TempDir::TempDir() {
  const char* base = getenv("TMPDIR");
  std::string tmpl = std::string(base && *base ? base : "/tmp") + "/kiln-test-XXXXXX";
  char* made = mkdtemp(tmpl.data());
  REQUIRE(made != nullptr);
  path_ = made;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

void WriteTestFile(const std::string& path, const std::string& content) {
  auto parent = std::filesystem::path(path).parent_path().string();
  if (!parent.empty()) REQUIRE(MakeDirs(parent).ok());
  REQUIRE(WriteFileAtomic(path, content).ok());
}

}  // namespace kiln::test
