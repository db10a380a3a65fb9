#include "server/coord/embedded/file_env.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include "common/file_util.h"

namespace kiln::coord::embedded {
namespace {

class PosixAppendFile : public AppendFile {
 public:
  PosixAppendFile(std::string path, UniqueFd fd) : path_(std::move(path)), fd_(std::move(fd)) {}
  Status Append(std::string_view data) override { return WriteAll(fd_.get(), data, "write " + path_); }
  Status Sync() override {
    if (::fdatasync(fd_.get()) != 0) return ErrnoError("fdatasync " + path_, errno);
    return Status::Ok();
  }
  const std::string& path() const override { return path_; }

 private:
  std::string path_;
  UniqueFd fd_;
};

class PosixFileEnv : public FileEnv {
 public:
  Result<std::unique_ptr<AppendFile>> OpenAppend(const std::string& path) override {
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) return ErrnoError("open " + path, errno);
    return std::unique_ptr<AppendFile>(new PosixAppendFile(path, UniqueFd(fd)));
  }
  Status SyncDir(const std::string& dir) override { return kiln::SyncDir(dir); }
  Status WriteFileAtomic(const std::string& path, std::string_view data) override {
    return kiln::WriteFileAtomic(path, data, 0644);
  }
};

}  // namespace

FileEnv* DefaultFileEnv() {
  static PosixFileEnv env;
  return &env;
}

}  // namespace kiln::coord::embedded
