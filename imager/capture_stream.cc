#include "imager/capture_stream.h"

#include <algorithm>
#include <cstring>

#include "imager/chunker.h"
#include "imager/zstd_util.h"

namespace kiln::imager {

CaptureStreamer::CaptureStreamer(CaptureTarget* target, const CaptureOptions& opts)
    : target_(target), opts_(opts) {
  int n = std::max(1, target->concurrent_puts());
  for (int i = 0; i < n; ++i) senders_.emplace_back([this] { Sender(); });
}

CaptureStreamer::~CaptureStreamer() {
  {
    std::lock_guard lock(mu_);
    closing_ = true;
    if (error_.ok()) error_ = Status(Code::kCancelled, "capture stream stopped");
  }
  cv_.notify_all();
  for (auto& t : senders_) t.join();
}

void CaptureStreamer::Add(const Sha256Digest& digest, std::string_view bytes) {
  std::unique_lock lock(mu_);
  if (!error_.ok() || !seen_.insert(digest).second) return;
  Batch& b = filling_;
  if (b.bytes.capacity() == 0) b.bytes.reserve(kBatchBytes + kMaxObjectSize);
  b.objects.push_back({digest, {b.bytes.size(), bytes.size()}});
  b.bytes.append(bytes);
  if (b.bytes.size() < kBatchBytes) return;
  cv_.wait(lock, [&] { return queue_.size() < kMaxQueued || !error_.ok(); });
  if (!error_.ok()) return;
  queue_.push_back(std::move(filling_));
  filling_ = Batch();
  cv_.notify_all();
}

Status CaptureStreamer::Send(const Batch& batch, Compressor& comp, uint64_t* objects,
                             uint64_t* bytes) {
  std::vector<Sha256Digest> digests;
  digests.reserve(batch.objects.size());
  for (const auto& o : batch.objects) digests.push_back(o.first);
  KILN_ASSIGN_OR_RETURN(std::vector<Sha256Digest> missing, target_->Offer(digests));
  if (missing.empty()) return Status::Ok();
  DigestSet lacking(missing.begin(), missing.end());
  // Compressed here, on the sender: the scan's threads go on reading.
  ObjectFrames frames;
  frames.reserve(lacking.size());
  for (const auto& [d, at] : batch.objects) {
    if (!lacking.count(d)) continue;
    frames.emplace_back(d, std::string());
    comp.Compress(std::string_view(batch.bytes).substr(at.first, at.second), &frames.back().second);
    *bytes += frames.back().second.size();
  }
  if (frames.size() != lacking.size())
    return Internal("the capture's target asked for objects it was not offered");
  *objects += frames.size();
  return target_->PutObjects(frames);
}

void CaptureStreamer::Sender() {
  Compressor comp(opts_.zstd_level);
  for (;;) {
    Batch batch;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return !queue_.empty() || closing_ || !error_.ok(); });
      if (!error_.ok() || queue_.empty()) return;
      batch = std::move(queue_.front());
      queue_.pop_front();
      cv_.notify_all();  // room for the scan's next batch
    }
    uint64_t objects = 0, bytes = 0;
    Status s = Send(batch, comp, &objects, &bytes);
    std::lock_guard lock(mu_);
    if (!s.ok()) {
      if (error_.ok()) error_ = s;
      cv_.notify_all();
      return;
    }
    objects_sent_ += objects;
    bytes_sent_ += bytes;
  }
}

Status CaptureStreamer::Finish(CaptureReport* report) {
  {
    std::lock_guard lock(mu_);
    if (!filling_.objects.empty()) {
      queue_.push_back(std::move(filling_));
      filling_ = Batch();
    }
    closing_ = true;
  }
  cv_.notify_all();
  for (auto& t : senders_) t.join();
  senders_.clear();
  std::lock_guard lock(mu_);
  report->objects_sent += objects_sent_;
  report->bytes_sent += bytes_sent_;
  return error_;
}

}  // namespace kiln::imager
