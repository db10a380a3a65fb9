#include "server/coord/embedded/wal_reader.h"

#include <fmt/format.h>

#include "common/hash.h"
#include "server/coord/embedded/coding.h"
#include "server/coord/embedded/wal_format.h"

namespace kiln::coord::wal {
namespace {
bool KnownType(uint8_t t) { return t >= kSegmentHeader && t <= kSnapshotFooter; }
}  // namespace

bool RecordReader::ValidAt(uint64_t off, std::string* why) const {
  uint64_t left = in_.size() - off;
  if (left < kHeaderSize) {
    *why = fmt::format("{} bytes left, less than a record header", left);
    return false;
  }
  const char* p = in_.data() + off;
  uint32_t masked = DecodeFixed32(p);
  uint32_t len = DecodeFixed32(p + 4);
  uint8_t type = static_cast<uint8_t>(p[8]);
  if (!KnownType(type)) {
    *why = fmt::format("unknown record type {}", type);
    return false;
  }
  if (len > kMaxPayload || len > left - kHeaderSize) {
    *why = fmt::format("record length {} runs past the end of the file", len);
    return false;
  }
  uint32_t crc = Crc32cExtend(Crc32c(p + 8, 1), p + kHeaderSize, len);
  if (UnmaskCrc(masked) != crc) {
    *why = "checksum mismatch";
    return false;
  }
  return true;
}

RecordReader::Outcome RecordReader::Next(Record* out, std::string* why) {
  if (stuck_ != Outcome::kRecord) {
    *why = stuck_why_;
    return stuck_;
  }
  if (pos_ == in_.size()) {
    stuck_ = Outcome::kEnd;
    return stuck_;
  }
  std::string reason;
  if (ValidAt(pos_, &reason)) {
    const char* p = in_.data() + pos_;
    uint32_t len = DecodeFixed32(p + 4);
    out->type = static_cast<uint8_t>(p[8]);
    out->payload = in_.substr(pos_ + kHeaderSize, len);
    out->offset = pos_;
    pos_ += kHeaderSize + len;
    return Outcome::kRecord;
  }
  // Damaged. If any valid record starts later in the file, acknowledged
  // data follows the damage: corruption. Otherwise it is a torn tail. The
  // scan only runs on damaged files, and a real torn tail is short.
  stuck_ = Outcome::kTornTail;
  std::string ignored;
  for (uint64_t off = pos_ + 1; off + kHeaderSize <= in_.size(); ++off) {
    uint8_t type = static_cast<uint8_t>(in_[off + 8]);
    if (!KnownType(type)) continue;
    if (ValidAt(off, &ignored)) {
      stuck_ = Outcome::kCorrupt;
      reason += fmt::format(" (a valid record follows at offset {})", off);
      break;
    }
  }
  stuck_why_ = reason;
  *why = reason;
  return stuck_;
}

}  // namespace kiln::coord::wal
