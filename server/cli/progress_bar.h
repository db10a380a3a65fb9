#pragma once
// A one-line progress bar on stderr for long CLI operations (capture,
// deploy, export, verify): bytes, files, rate and ETA, redrawn at most ten
// times a second. Silent when stderr is not a terminal, so scripts and logs
// see only the final summary the command prints.

#include <chrono>
#include <cstdint>
#include <string>

namespace kiln::cli {

class ProgressBar {
 public:
  // enabled: normally IsTerminal(); tests pass false.
  explicit ProgressBar(std::string label, bool enabled = IsTerminal());
  ~ProgressBar();  // Done()

  static bool IsTerminal();

  // bytes_total or files_total may be 0 (unknown): no percentage then.
  void Update(uint64_t bytes, uint64_t bytes_total, uint64_t files, uint64_t files_total,
              std::string_view phase = {});
  // Clears the line.
  void Done();

 private:
  std::string label_;
  bool enabled_;
  bool drawn_ = false;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point last_{};
};

}  // namespace kiln::cli
