#include "server/image_stream_body.h"

#include <unistd.h>

#include <algorithm>

#include "common/log.h"

namespace kiln {

ImageStreamBody::ImageStreamBody(const imager::ObjectStore* store,
                                 std::shared_ptr<const imager::StreamPlan> plan, uint64_t offset,
                                 std::function<void()> on_stale)
    : store_(store), plan_(std::move(plan)), on_stale_(std::move(on_stale)) {
  // The segment holding the offset, then the position inside it.
  auto it = std::upper_bound(plan_->starts.begin(), plan_->starts.end(), offset);
  seg_ = it == plan_->starts.begin() ? 0 : static_cast<size_t>(it - plan_->starts.begin() - 1);
  pos_ = seg_ < plan_->starts.size() ? offset - plan_->starts[seg_] : 0;
}

bool ImageStreamBody::Skip() {
  while (seg_ < plan_->segments.size()) {
    const imager::StreamSegment& s = plan_->segments[seg_];
    if (pos_ < s.bytes.size() + (s.has_object ? s.object_size : 0)) return true;
    ++seg_;
    pos_ = 0;
    fd_.Reset();
  }
  return false;
}

bool ImageStreamBody::OpenObject() {
  if (fd_.valid()) return true;
  if (stale_) return false;
  const imager::StreamSegment& s = plan_->segments[seg_];
  auto frame = store_->OpenFrame(s.object);
  if (!frame.ok() || frame->size != s.object_size) {
    // Removed (gc) or changed (damage) since the plan was made: the client
    // sees a broken transfer, and its resume gets a new plan, which names
    // what is wrong (missing) or streams what is there (the client's
    // verification names the damaged object).
    log::Warn("imager", "stream object gone or changed since its plan",
              {{"object", ToHex(s.object)}});
    stale_ = true;
    if (on_stale_) on_stale_();
    return false;
  }
  fd_ = std::move(frame->fd);
  frame_offset_ = frame->offset;
  return true;
}

bool ImageStreamBody::File(FileRegion* region) {
  if (!Skip()) return false;
  const imager::StreamSegment& s = plan_->segments[seg_];
  // Only at a frame: record bytes go through Read, and a vanished object is
  // Read's to report (File has no way to say "error").
  if (pos_ < s.bytes.size() || !OpenObject()) return false;
  uint64_t at = pos_ - s.bytes.size();
  *region = {fd_.get(), frame_offset_ + at, s.object_size - at};
  pos_ += region->size;  // fd_ stays open until the next call moves on
  return true;
}

ssize_t ImageStreamBody::Read(char* buf, size_t max, Parking&) {
  size_t filled = 0;
  while (filled < max && Skip()) {
    const imager::StreamSegment& s = plan_->segments[seg_];
    if (pos_ < s.bytes.size()) {
      size_t n = std::min<uint64_t>(max - filled, s.bytes.size() - pos_);
      std::copy_n(s.bytes.data() + pos_, n, buf + filled);
      filled += n;
      pos_ += n;
      // Stop before the frame, which File hands to sendfile.
      if (pos_ == s.bytes.size() && s.has_object) break;
      continue;
    }
    if (!OpenObject()) return filled > 0 ? static_cast<ssize_t>(filled) : kError;
    uint64_t at = pos_ - s.bytes.size();
    size_t want = std::min<uint64_t>(max - filled, s.object_size - at);
    ssize_t n = ::pread(fd_.get(), buf + filled, want, static_cast<off_t>(frame_offset_ + at));
    if (n <= 0) return filled > 0 ? static_cast<ssize_t>(filled) : kError;
    filled += static_cast<size_t>(n);
    pos_ += static_cast<uint64_t>(n);
  }
  if (filled == 0) return kEnd;
  return static_cast<ssize_t>(filled);
}

}  // namespace kiln
