#pragma once
// The embedded store's only access to the files it writes, behind a narrow
// interface so that tests can make a write or an fsync fail (LevelDB's Env,
// cut down to what the log and snapshots need). Reads use plain ReadFile.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "common/status.h"

namespace kiln::coord::embedded {

// A file opened for appending. Not thread-safe except as noted.
class AppendFile {
 public:
  virtual ~AppendFile() = default;
  virtual Status Append(std::string_view data) = 0;
  // Makes everything appended so far durable (fdatasync). May run on
  // another thread concurrently with Append.
  virtual Status Sync() = 0;
  virtual const std::string& path() const = 0;
};

class FileEnv {
 public:
  virtual ~FileEnv() = default;
  // Opens path for appending, creating it (mode 0644) if missing.
  virtual Result<std::unique_ptr<AppendFile>> OpenAppend(const std::string& path) = 0;
  // fsync on a directory, after creating or renaming a file in it.
  virtual Status SyncDir(const std::string& dir) = 0;
  // Writes a whole file durably under a temporary name, then renames it.
  virtual Status WriteFileAtomic(const std::string& path, std::string_view data) = 0;
};

// The real file system. Shared, stateless.
FileEnv* DefaultFileEnv();

}  // namespace kiln::coord::embedded
