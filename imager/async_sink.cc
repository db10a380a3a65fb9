#include "imager/async_sink.h"

namespace kiln::imager {
namespace {

constexpr size_t kMaxSpare = 8;
// A waiting consumer is woken when this many calls or bytes are queued (or
// by Wake, or when the producer must wait).
constexpr size_t kWakeCalls = 64;
constexpr size_t kWakeBytes = 1 << 20;

}  // namespace

AsyncSink::AsyncSink(StreamSink* inner, size_t max_queued)
    : inner_(inner), max_queued_(max_queued), thread_([this] { Loop(); }) {}

AsyncSink::~AsyncSink() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
    queue_.clear();
  }
  work_.notify_one();
  thread_.join();
}

Status AsyncSink::Push(Call call) {
  size_t bytes = call.kind == Call::Kind::kChunk ? call.data.size() : 0;
  std::unique_lock lock(mu_);
  WaitForRoom(lock, [&] { return queued_ < max_queued_ || !error_.ok(); });
  if (!error_.ok()) return error_;
  queue_.push_back(std::move(call));
  queued_ += bytes;
  // A waiting consumer is woken for a batch, not for every call: a deploy
  // makes two calls per small file.
  if (consumer_waiting_ && (queue_.size() >= kWakeCalls || queued_ >= kWakeBytes))
    work_.notify_one();
  return Status::Ok();
}

void AsyncSink::Wake() {
  std::lock_guard lock(mu_);
  if (consumer_waiting_ && !queue_.empty()) work_.notify_one();
}

template <typename Pred>
void AsyncSink::WaitForRoom(std::unique_lock<std::mutex>& lock, Pred ready) {
  while (!ready()) {
    // What is queued is the consumer's to do, batch or not.
    if (consumer_waiting_) work_.notify_one();
    producer_waiting_ = true;
    room_.wait(lock);
    producer_waiting_ = false;
  }
}

void AsyncSink::Loop() {
  std::unique_lock lock(mu_);
  for (;;) {
    while (!stop_ && queue_.empty()) {
      consumer_waiting_ = true;
      work_.wait(lock);
      consumer_waiting_ = false;
    }
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
    // The producer waits for room (half the bound frees it, so that it is
    // not woken for every call) or, in OnEnd, for the queue to empty.
    if (producer_waiting_ && (queued_ < max_queued_ / 2 || queue_.empty() || !error_.ok()))
      room_.notify_one();
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
    WaitForRoom(lock, [&] { return (queue_.empty() && !busy_) || !error_.ok(); });
    if (!error_.ok()) return error_;
  }
  // The thread is idle and nothing more will be queued: this call is the last.
  Status s = inner_->OnEnd(counts);
  std::lock_guard lock(mu_);
  if (!s.ok() && error_.ok()) error_ = s;
  return s;
}

}  // namespace kiln::imager
