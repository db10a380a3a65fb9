#include "imager/async_sink.h"

namespace kiln::imager {
namespace {

constexpr size_t kMaxSpare = 8;

}  // namespace

AsyncSink::AsyncSink(StreamSink* inner, size_t max_queued)
    : inner_(inner), max_queued_(max_queued), thread_([this] { Loop(); }) {}

AsyncSink::~AsyncSink() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
    queue_.clear();
  }
  cv_.notify_all();
  thread_.join();
}

Status AsyncSink::Push(Call call) {
  size_t bytes = call.kind == Call::Kind::kChunk ? call.data.size() : 0;
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] { return queued_ < max_queued_ || !error_.ok(); });
  if (!error_.ok()) return error_;
  queue_.push_back(std::move(call));
  queued_ += bytes;
  cv_.notify_all();
  return Status::Ok();
}

void AsyncSink::Loop() {
  std::unique_lock lock(mu_);
  for (;;) {
    cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
    if (stop_) return;
    Call call = std::move(queue_.front());
    queue_.pop_front();
    busy_ = true;
    bool skip = !error_.ok();  // after an error the rest is dropped
    lock.unlock();
    Status s;
    if (!skip) {
      switch (call.kind) {
        case Call::Kind::kHeader: s = inner_->OnHeader(call.header); break;
        case Call::Kind::kEntry: s = inner_->OnEntry(call.entry); break;
        case Call::Kind::kChunk: s = inner_->OnChunk(call.digest, call.data); break;
        case Call::Kind::kDelete: s = inner_->OnDelete(call.data); break;
      }
    }
    lock.lock();
    busy_ = false;
    if (call.kind == Call::Kind::kChunk) {
      queued_ -= call.data.size();
      if (spare_.size() < kMaxSpare) spare_.push_back(std::move(call.data));
    }
    if (!s.ok() && error_.ok()) error_ = s;
    cv_.notify_all();
  }
}

Status AsyncSink::OnHeader(const StreamHeader& h) {
  Call c{Call::Kind::kHeader, h, {}, {}, {}};
  return Push(std::move(c));
}

Status AsyncSink::OnEntry(const StreamEntry& e) {
  Call c{Call::Kind::kEntry, {}, e, {}, {}};
  return Push(std::move(c));
}

Status AsyncSink::OnChunk(const Sha256Digest& digest, std::string_view data) {
  Call c{Call::Kind::kChunk, {}, {}, digest, std::string(data)};
  return Push(std::move(c));
}

Status AsyncSink::OnChunkData(const Sha256Digest& digest, std::string&& data) {
  Call c{Call::Kind::kChunk, {}, {}, digest, std::move(data)};
  {
    std::lock_guard lock(mu_);
    if (!spare_.empty()) {
      data = std::move(spare_.back());
      spare_.pop_back();
    } else {
      data = std::string();
    }
  }
  return Push(std::move(c));
}

Status AsyncSink::OnDelete(const std::string& path) {
  Call c{Call::Kind::kDelete, {}, {}, {}, path};
  return Push(std::move(c));
}

Status AsyncSink::OnEnd(const StreamCounts& counts) {
  {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return (queue_.empty() && !busy_) || !error_.ok(); });
    if (!error_.ok()) return error_;
  }
  // The thread is idle and nothing more will be queued: this call is the last.
  Status s = inner_->OnEnd(counts);
  std::lock_guard lock(mu_);
  if (!s.ok() && error_.ok()) error_ = s;
  return s;
}

}  // namespace kiln::imager
