#pragma once
// Small, careful file helpers. Every failure comes back as a Status naming
// the path and the operation; nothing throws.

#include <sys/types.h>

#include <string>
#include <string_view>

#include "common/status.h"

namespace kiln {

Result<std::string> ReadFile(const std::string& path);

// Writes data to path so that a crash leaves either the old file or the new
// one, never a mix: write a temporary sibling, fsync it, rename it over
// path, fsync the directory. mode applies to the new file.
Status WriteFileAtomic(const std::string& path, std::string_view data, mode_t mode = 0644);

// mkdir -p with the given mode for directories it creates.
Status MakeDirs(const std::string& path, mode_t mode = 0755);

// fsync(2) on a directory, so that a rename or create inside it is durable.
Status SyncDir(const std::string& dir);

// Removes path recursively (rm -rf). Missing path is OK.
Status RemoveAll(const std::string& path);

// A file descriptor that closes itself.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  ~UniqueFd() { Reset(); }
  UniqueFd(UniqueFd&& o) noexcept : fd_(o.Release()) {}
  UniqueFd& operator=(UniqueFd&& o) noexcept {
    if (this != &o) Reset(o.Release());
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  int Release() {
    int f = fd_;
    fd_ = -1;
    return f;
  }
  void Reset(int fd = -1);

 private:
  int fd_ = -1;
};

// Writes all of data to fd, retrying on EINTR and short writes.
Status WriteAll(int fd, std::string_view data, std::string_view what);

// An exclusive advisory lock (flock) on a file, held while the object lives.
// A second process taking the same lock fails at once with kUnavailable; the
// message names the holder's pid, which the lock file records.
class FileLock {
 public:
  static Result<FileLock> Acquire(const std::string& path);
  FileLock(FileLock&&) = default;
  FileLock& operator=(FileLock&&) = default;

 private:
  explicit FileLock(UniqueFd fd) : fd_(std::move(fd)) {}
  UniqueFd fd_;
};

}  // namespace kiln
