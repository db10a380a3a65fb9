#pragma once
// Writes a compressed newc cpio archive (the Linux initramfs format) with
// libarchive. Entries are added in the order given; parents must come
// before their children, as the kernel's unpacker expects.

#include <sys/types.h>

#include <memory>

#include <string>
#include <string_view>

#include "common/status.h"

struct archive;

namespace kiln::initrd {

enum class Compression { kNone, kGzip, kZstd };

class CpioWriter {
 public:
  // Opens out_path for writing (replaced atomically on Finish()).
  static Result<std::unique_ptr<CpioWriter>> Create(const std::string& out_path, Compression c);
  ~CpioWriter();

  Status AddDirectory(std::string_view path, mode_t mode = 0755);
  Status AddSymlink(std::string_view path, std::string_view target);
  Status AddData(std::string_view path, std::string_view data, mode_t mode);
  // Copies a host file's bytes under path (following symlinks), keeping
  // its permission bits unless mode is given.
  Status AddFile(std::string_view path, const std::string& host_path, mode_t mode = 0);
  // Writes the trailer, closes and renames into place.
  Status Finish();

  uint64_t entries() const { return entries_; }

 private:
  CpioWriter() = default;
  Status Header(std::string_view path, mode_t type_and_mode, int64_t size,
                std::string_view symlink = {});
  Status Check(int rc, std::string_view what);

  struct archive* a_ = nullptr;
  std::string out_path_, tmp_path_;
  uint64_t entries_ = 0;
  bool finished_ = false;
};

}  // namespace kiln::initrd
