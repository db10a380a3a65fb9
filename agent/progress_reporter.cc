#include "agent/progress_reporter.h"

#include "common/log.h"

namespace kiln::agent {
namespace {

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

ProgressReporter::ProgressReporter(ProgressJournal journal, BatchSender sender,
                                   ReporterOptions opts)
    : journal_(std::move(journal)), sender_(std::move(sender)), opts_(std::move(opts)) {
  thread_ = std::thread([this] { SenderLoop(); });
}

ProgressReporter::~ProgressReporter() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

void ProgressReporter::Append(ProgressEvent e) {
  e.time_ms = NowMs();
  {
    std::lock_guard lock(mu_);
    auto seq = journal_.Append(e);
    if (!seq.ok()) {
      // The journal is the only copy; without it we can still try to send.
      log::Error("agent", "progress journal write failed", {{"error", seq.status().ToString()}});
      return;
    }
    e.seq = *seq;
  }
  if (opts_.on_event) opts_.on_event(e);
  wake_.notify_all();
}

void ProgressReporter::Phase(const std::string& phase, const std::string& message) {
  {
    std::lock_guard lock(mu_);
    phase_ = phase;
    step_.clear();
  }
  ProgressEvent e;
  e.kind = ProgressEvent::Kind::kPhase;
  e.phase = phase;
  e.message = message;
  Append(std::move(e));
}

void ProgressReporter::Log(const std::string& level, const std::string& message) {
  ProgressEvent e;
  e.kind = ProgressEvent::Kind::kLog;
  {
    std::lock_guard lock(mu_);
    e.phase = phase_;
  }
  e.level = level;
  e.message = message;
  Append(std::move(e));
}

void ProgressReporter::Progress(const std::string& step, uint64_t done, uint64_t total) {
  auto now = std::chrono::steady_clock::now();
  ProgressEvent e;
  e.kind = ProgressEvent::Kind::kProgress;
  {
    std::lock_guard lock(mu_);
    bool new_step = step != step_;
    if (new_step) {
      step_ = step;
      step_started_ = now;
      step_start_done_ = done;
      rate_ = 0;
    }
    bool due = new_step || now - last_sample_ >= opts_.sample_every || (total && done >= total);
    if (!due) return;
    double secs = std::chrono::duration<double>(now - step_started_).count();
    if (secs > 0.05 && done >= step_start_done_) {
      double inst = static_cast<double>(done - step_start_done_) / secs;
      // Smooth so the ETA does not jump with every sample.
      rate_ = rate_ == 0 ? inst : 0.7 * rate_ + 0.3 * inst;
    }
    last_sample_ = now;
    e.phase = phase_;
    e.rate = rate_;
    if (total && rate_ > 0 && done <= total) e.eta_s = static_cast<double>(total - done) / rate_;
  }
  e.step = step;
  e.done = done;
  e.total = total;
  Append(std::move(e));
}

void ProgressReporter::Result(bool ok, const std::string& message) {
  ProgressEvent e;
  e.kind = ProgressEvent::Kind::kResult;
  {
    std::lock_guard lock(mu_);
    e.phase = phase_;
  }
  e.ok = ok;
  e.level = ok ? "info" : "error";
  e.message = message;
  Append(std::move(e));
}

void ProgressReporter::SenderLoop() {
  auto backoff = opts_.min_backoff;
  std::unique_lock lock(mu_);
  for (;;) {
    wake_.wait(lock, [&] { return stop_ || journal_.acked() < journal_.last_seq(); });
    if (stop_) return;
    auto batch = journal_.Pending(opts_.max_batch);
    lock.unlock();
    auto acked = sender_(batch);
    lock.lock();
    if (acked.ok()) {
      Status s = journal_.MarkAcked(*acked);
      last_error_ = s.ok() ? "" : s.ToString();
      backoff = opts_.min_backoff;
      acked_cv_.notify_all();
      continue;
    }
    if (last_error_ != acked.status().ToString())
      log::Warn("agent", "cannot report progress; will retry",
                {{"error", acked.status().ToString()}, {"pending", batch.size()}});
    last_error_ = acked.status().ToString();
    wake_.wait_for(lock, backoff, [&] { return stop_; });
    if (stop_) return;
    backoff = std::min(backoff * 2, opts_.max_backoff);
  }
}

Status ProgressReporter::Flush(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  bool done = acked_cv_.wait_for(lock, timeout, [&] { return journal_.acked() >= journal_.last_seq(); });
  if (done) return Status::Ok();
  return Timeout("the server has not acknowledged every progress event (" + last_error_ + ")");
}

std::string ProgressReporter::last_error() const {
  std::lock_guard lock(mu_);
  return last_error_;
}

uint64_t ProgressReporter::acked() const {
  std::lock_guard lock(mu_);
  return journal_.acked();
}

}  // namespace kiln::agent
