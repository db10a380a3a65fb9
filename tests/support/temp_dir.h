#pragma once
// A fresh directory under $TMPDIR (or /tmp), removed with everything in it
// when the object goes away.

#include <string>

namespace kiln::test {

class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  std::string Sub(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// Writes a file, creating parent directories; aborts the test on failure.
void WriteTestFile(const std::string& path, const std::string& content);

}  // namespace kiln::test
