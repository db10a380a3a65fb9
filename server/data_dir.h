#pragma once
// The server's data directory: everything durable kiln owns lives here.
//
//   DIR/lock          flock held by the running `kiln serve` (holds its pid)
//   DIR/admin.token   the admin token, mode 0600, made on first start
//   DIR/serve.json    where the running server listens (for the CLI)
//   DIR/coord/        the embedded coordination store
//   DIR/images/       the image store
//
// Opening a data directory creates it if needed, proves it is writable and
// takes the lock, so two servers can never share one.

#include <string>

#include "common/file_util.h"
#include "common/status.h"

namespace kiln {

class DataDir {
 public:
  // Creates DIR (mode 0700) when missing, checks it is writable, takes the
  // lock (kUnavailable naming the holder's pid when another server has it)
  // and creates the admin token when missing.
  static Result<DataDir> Open(const std::string& path);

  const std::string& path() const { return path_; }
  const std::string& admin_token() const { return admin_token_; }
  std::string Sub(const std::string& name) const { return path_ + "/" + name; }

 private:
  DataDir(std::string path, FileLock lock, std::string token)
      : path_(std::move(path)), lock_(std::move(lock)), admin_token_(std::move(token)) {}
  std::string path_;
  FileLock lock_;
  std::string admin_token_;
};

}  // namespace kiln
