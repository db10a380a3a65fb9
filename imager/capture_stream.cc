#include "imager/capture_stream.h"

#include <algorithm>

#include "imager/stored_frame.h"
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

void CaptureStreamer::Add(const Sha256Digest& digest, std::string_view bytes,
                          const std::shared_ptr<const std::string>& owner) {
  std::unique_lock lock(mu_);
  if (!error_.ok() || !seen_.insert(digest).second) return;
  Batch& b = filling_;
  if (owner) {
    if (b.owners.empty() || b.owners.back() != owner) b.owners.push_back(owner);
    b.objects.push_back({digest, bytes, 0, bytes.size()});
  } else {
    if (b.copies.empty() && !spare_copies_.empty()) {
      b.copies = std::move(spare_copies_.back());
      spare_copies_.pop_back();
    }
    b.objects.push_back({digest, {}, b.copies.size(), bytes.size()});
    b.copies.append(bytes);
  }
  b.bytes += bytes.size();
  if (b.bytes < kBatchBytes && b.objects.size() < kMaxBatchObjects) return;
  cv_.wait(lock, [&] { return queue_.size() < kMaxQueued || !error_.ok(); });
  if (!error_.ok()) return;
  // Another scanning thread, waiting here too, may have queued it.
  if (filling_.bytes < kBatchBytes && filling_.objects.size() < kMaxBatchObjects) return;
  queue_.push_back(std::move(filling_));
  filling_ = Batch();
  cv_.notify_all();
}

Status CaptureStreamer::Send(const Batch& batch, Compressor& comp, uint64_t* objects,
                             uint64_t* bytes) {
  std::vector<Sha256Digest> digests;
  digests.reserve(batch.objects.size());
  for (const auto& o : batch.objects) digests.push_back(o.digest);
  KILN_ASSIGN_OR_RETURN(std::vector<Sha256Digest> missing, target_->Offer(digests));
  if (missing.empty()) return Status::Ok();
  DigestSet lacking(missing.begin(), missing.end());
  // Compressed here, on the sender: the scan's threads go on reading.
  // Reserved whole: the pieces point into these strings.
  std::vector<std::string> owned(lacking.size());
  std::vector<FramePieces> frames;
  frames.reserve(lacking.size());
  for (const auto& o : batch.objects) {
    if (!lacking.count(o.digest)) continue;
    std::string_view data =
        o.kept.empty() ? std::string_view(batch.copies).substr(o.offset, o.size) : o.kept;
    std::string& mine = owned[frames.size()];
    FramePieces& f = frames.emplace_back();
    f.digest = o.digest;
    if (LooksIncompressible(data)) {
      StoredFramePieces(data, &mine, &f.pieces);
      *bytes += data.size() + mine.size();
    } else {
      comp.Compress(data, &mine);
      f.pieces.push_back(mine);
      *bytes += mine.size();
    }
  }
  if (frames.size() != lacking.size())
    return Internal("the capture's target asked for objects it was not offered");
  *objects += frames.size();
  return target_->PutPieces(frames);
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
    // The scan's blocks go back to it (it reuses a block nobody keeps).
    batch.owners.clear();
    std::lock_guard lock(mu_);
    if (!s.ok()) {
      if (error_.ok()) error_ = s;
      cv_.notify_all();
      return;
    }
    // Kept for the next batches, as many as can be filling or queued.
    if (!batch.copies.empty() && spare_copies_.size() < kMaxQueued + 1) {
      batch.copies.clear();
      spare_copies_.push_back(std::move(batch.copies));
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
