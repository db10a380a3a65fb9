#pragma once
// Reports an install's story to the server, live and in order, and survives
// the server going away: every event goes to the journal first, and one
// sender thread ships what the server has not acknowledged, oldest first,
// retrying with backoff while the server is unreachable.
//
// Thread-safe: any thread may report.

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "agent/progress_event.h"
#include "agent/progress_journal.h"
#include "common/status.h"

namespace kiln::agent {

// Ships a batch (in seq order) and returns the highest seq the server now
// holds. The server must accept a batch it has partly seen.
using BatchSender = std::function<Result<uint64_t>(const std::vector<ProgressEvent>&)>;

struct ReporterOptions {
  size_t max_batch = 256;
  std::chrono::milliseconds min_backoff{100};
  std::chrono::milliseconds max_backoff{5000};
  // A progress sample is reported when this long has passed since the last
  // one, or when the phase or step changed, or when done == total.
  std::chrono::milliseconds sample_every{1000};
  std::function<void(const ProgressEvent&)> on_event;  // local echo (console)
};

class ProgressReporter {
 public:
  ProgressReporter(ProgressJournal journal, BatchSender sender, ReporterOptions opts = {});
  ~ProgressReporter();  // stops the sender; unsent events stay in the journal

  void Phase(const std::string& phase, const std::string& message);
  void Log(const std::string& level, const std::string& message);
  // A progress sample (rate and ETA computed here); rate-limited.
  void Progress(const std::string& step, uint64_t done, uint64_t total);
  void Result(bool ok, const std::string& message);

  // Waits until the server has every event so far; kTimeout otherwise.
  Status Flush(std::chrono::milliseconds timeout);
  // The last error from sending ("" when the last send worked).
  std::string last_error() const;
  uint64_t acked() const;

 private:
  void Append(ProgressEvent e);
  void SenderLoop();

  mutable std::mutex mu_;
  std::condition_variable wake_;     // sender: new events or stop
  std::condition_variable acked_cv_; // Flush: acked moved
  ProgressJournal journal_;
  BatchSender sender_;
  ReporterOptions opts_;
  bool stop_ = false;
  std::string last_error_;
  std::string phase_, step_;
  std::chrono::steady_clock::time_point last_sample_{};
  std::chrono::steady_clock::time_point step_started_{};
  uint64_t step_start_done_ = 0;
  double rate_ = 0;
  std::thread thread_;
};

}  // namespace kiln::agent
