#include "imager/stream_blocks.h"

#include <algorithm>

#include "imager/codec.h"
#include "imager/stream.h"

namespace kiln::imager {
namespace {

// A record's head: its tag and a length of at most ten varint bytes.
constexpr size_t kMaxHead = 11;
constexpr size_t kMaxSpare = 4;

}  // namespace

StreamBlocks::StreamBlocks(Emit emit) : emit_(std::move(emit)), need_(kStreamHeaderSize) {
  cur_.reserve(2 * kTarget);
}

void StreamBlocks::Add(std::string_view data) {
  while (!data.empty()) {
    if (passthrough_) {
      cur_.append(data);
      if (cur_.size() >= kTarget) EmitUpTo(cur_.size());
      return;
    }
    if (need_ > 0) {
      size_t n = static_cast<size_t>(std::min<uint64_t>(need_, data.size()));
      cur_.append(data.data(), n);
      data.remove_prefix(n);
      need_ -= n;
      if (need_ == 0) {
        boundary_ = cur_.size();
        if (boundary_ >= kTarget) EmitUpTo(boundary_);
      }
      continue;
    }
    // Between records: the next one's head arrives a byte at a time (a few
    // bytes a record).
    head_.push_back(data.front());
    cur_.push_back(data.front());
    data.remove_prefix(1);
    ByteReader r(head_);
    uint8_t tag;
    uint64_t len;
    if (!r.U8(&tag) || !r.Varint(&len)) {
      if (head_.size() >= kMaxHead) passthrough_ = true;  // not a length: the reader says why
      continue;
    }
    if (len > (tag == 'O' ? kMaxObjectRecord : kMaxEntryRecord)) {
      passthrough_ = true;
      continue;
    }
    head_.clear();
    StartRecord(len);
  }
}

// Makes room for a record of len bytes whose head is at the end of cur_:
// when it would not fit, the whole records before it go first, so that
// they are not copied into a larger buffer. (After a Flush inside a record,
// its rest is appended to a fresh buffer, which may grow: only on resume.)
void StreamBlocks::StartRecord(uint64_t len) {
  size_t head = cur_.size() - boundary_;
  if (cur_.size() + len > cur_.capacity()) {
    if (boundary_ > 0) {
      std::string next = FreshBuffer(std::max<size_t>(2 * kTarget, head + len));
      next.append(cur_, boundary_, head);
      cur_.resize(boundary_);
      emit_(std::move(cur_));
      cur_ = std::move(next);
      boundary_ = 0;
    } else {
      cur_.reserve(cur_.size() + len);
    }
  }
  need_ = len;
  if (need_ == 0) {
    boundary_ = cur_.size();
    if (boundary_ >= kTarget) EmitUpTo(boundary_);
  }
}

void StreamBlocks::EmitUpTo(size_t end) {
  std::string next = FreshBuffer(2 * kTarget);
  next.append(cur_, end, std::string::npos);
  cur_.resize(end);
  emit_(std::move(cur_));
  cur_ = std::move(next);
  boundary_ = 0;
}

void StreamBlocks::Flush() {
  if (!cur_.empty()) EmitUpTo(cur_.size());
}

void StreamBlocks::Recycle(std::string&& buf) {
  if (spare_.size() < kMaxSpare) spare_.push_back(std::move(buf));
}

std::string StreamBlocks::FreshBuffer(size_t capacity) {
  std::string b;
  if (!spare_.empty()) {
    b = std::move(spare_.back());
    spare_.pop_back();
    b.clear();
  }
  b.reserve(capacity);
  return b;
}

}  // namespace kiln::imager
