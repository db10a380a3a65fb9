#pragma once
// A FileEnv that passes through to the real file system but can make
// appends or fsyncs fail, or slow fsyncs down, on demand (LevelDB's
// fault-injection env, cut down).

#include <atomic>
#include <chrono>
#include <memory>
#include <thread>

#include "server/coord/embedded/file_env.h"

namespace kiln::test {

class FaultEnv : public coord::embedded::FileEnv {
 public:
  std::atomic<bool> fail_sync{false};
  std::atomic<bool> fail_append{false};
  std::atomic<int> sync_delay_ms{0};
  std::atomic<int> syncs{0};

  Result<std::unique_ptr<coord::embedded::AppendFile>> OpenAppend(
      const std::string& path) override {
    auto real = coord::embedded::DefaultFileEnv()->OpenAppend(path);
    if (!real.ok()) return real.status();
    return std::unique_ptr<coord::embedded::AppendFile>(new File(this, std::move(*real)));
  }
  Status SyncDir(const std::string& dir) override {
    return coord::embedded::DefaultFileEnv()->SyncDir(dir);
  }
  Status WriteFileAtomic(const std::string& path, std::string_view data) override {
    return coord::embedded::DefaultFileEnv()->WriteFileAtomic(path, data);
  }

 private:
  class File : public coord::embedded::AppendFile {
   public:
    File(FaultEnv* env, std::unique_ptr<coord::embedded::AppendFile> real)
        : env_(env), real_(std::move(real)) {}
    Status Append(std::string_view data) override {
      if (env_->fail_append) return IoError("write " + path() + ": injected failure");
      return real_->Append(data);
    }
    Status Sync() override {
      if (int ms = env_->sync_delay_ms) std::this_thread::sleep_for(std::chrono::milliseconds(ms));
      ++env_->syncs;
      if (env_->fail_sync) return IoError("fdatasync " + path() + ": injected failure");
      return real_->Sync();
    }
    const std::string& path() const override { return real_->path(); }

   private:
    FaultEnv* env_;
    std::unique_ptr<coord::embedded::AppendFile> real_;
  };
};

}  // namespace kiln::test
