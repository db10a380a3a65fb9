#pragma once
// The config space a running server plans with: loaded at start, reloaded
// when its files change (polled: names, sizes, mtimes, inodes), never
// replaced by a broken edit. A reload that fails keeps the last good space
// and records the problems (file:line) for logs and `kiln status`; the next
// change is tried again.
//
// Thread safety: every method may be called from any thread. current()
// hands out a shared_ptr, so a plan in flight keeps its space alive across
// a reload.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "classes/diagnostic.h"
#include "classes/resolver.h"
#include "common/json.h"

namespace kiln::classes {

struct SpaceServiceOptions {
  std::string dir;
  std::chrono::milliseconds poll{1000};
  SandboxLimits limits;
};

class SpaceService {
 public:
  explicit SpaceService(SpaceServiceOptions options);
  ~SpaceService();  // stops the watcher

  // Loads the space once and starts watching. A space with problems is
  // reported (logs, status) and the service runs without one until an edit
  // fixes it.
  void Start();
  void Stop();

  // The resolver for the last good space, or nullptr if none loaded yet.
  std::shared_ptr<const Resolver> current() const;
  // Checks for changes now (the watcher does this every poll interval).
  // Returns true if a new space was loaded.
  bool CheckNow();

  // The "classes" section of GET /api/v1/status.
  Json StatusJson() const;
  // The problems of the last failed load ("" when the last load was good).
  std::string last_error() const;
  uint64_t generation() const { return generation_.load(); }
  const std::string& dir() const { return options_.dir; }

 private:
  bool Load();
  void Watch();

  SpaceServiceOptions options_;
  mutable std::mutex mu_;
  std::shared_ptr<const Resolver> resolver_;
  std::string fingerprint_;
  std::string last_error_;
  size_t last_error_count_ = 0;
  std::chrono::system_clock::time_point loaded_at_{};
  std::chrono::system_clock::time_point failed_at_{};
  std::atomic<uint64_t> generation_{0};
  std::atomic<uint64_t> reloads_failed_{0};

  std::mutex stop_mu_;
  std::condition_variable stop_cv_;
  bool stopping_ = false;
  std::thread watcher_;
};

}  // namespace kiln::classes
