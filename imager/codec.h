#pragma once
// Byte-level encoding shared by the manifest, stream and stat-cache formats
// (docs/IMAGE_FORMAT.md): unsigned LEB128 varints, length-prefixed strings
// and fixed 32-byte digests.
//
// ByteReader never reads past its input: every getter returns false on a
// short or malformed input and leaves the reader failed, so decoders can
// check once per record. That makes the formats safe to parse from an
// untrusted network stream.

#include <cstdint>
#include <string>
#include <string_view>

#include "common/hash.h"

namespace kiln::imager {

class ByteWriter {
 public:
  void U8(uint8_t v) { out_.push_back(static_cast<char>(v)); }
  void Varint(uint64_t v) {
    while (v >= 0x80) {
      out_.push_back(static_cast<char>((v & 0x7f) | 0x80));
      v >>= 7;
    }
    out_.push_back(static_cast<char>(v));
  }
  // Zig-zag for signed values (mtime before 1970).
  void Svarint(int64_t v) {
    Varint((static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63));
  }
  void Bytes(std::string_view s) {
    Varint(s.size());
    out_.append(s);
  }
  void Digest(const Sha256Digest& d) {
    out_.append(reinterpret_cast<const char*>(d.data()), d.size());
  }
  void Raw(std::string_view s) { out_.append(s); }

  std::string& str() { return out_; }
  std::string Take() { return std::move(out_); }
  size_t size() const { return out_.size(); }

 private:
  std::string out_;
};

class ByteReader {
 public:
  explicit ByteReader(std::string_view in) : in_(in) {}

  bool U8(uint8_t* v) {
    if (!ok_ || pos_ >= in_.size()) return Fail();
    *v = static_cast<uint8_t>(in_[pos_++]);
    return true;
  }
  bool Varint(uint64_t* v) {
    uint64_t r = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      uint8_t b;
      if (!U8(&b)) return false;
      // The tenth byte may carry only the top bit; anything more overflows.
      if (shift == 63 && b > 1) return Fail();
      r |= static_cast<uint64_t>(b & 0x7f) << shift;
      if (!(b & 0x80)) {
        *v = r;
        return true;
      }
    }
    return Fail();
  }
  bool Svarint(int64_t* v) {
    uint64_t u;
    if (!Varint(&u)) return false;
    *v = static_cast<int64_t>((u >> 1) ^ (~(u & 1) + 1));
    return true;
  }
  // A varint that must fit in `max`.
  bool Bounded(uint64_t max, uint64_t* v) {
    if (!Varint(v)) return false;
    if (*v > max) return Fail();
    return true;
  }
  bool Bytes(size_t max_len, std::string* s) {
    uint64_t n;
    if (!Bounded(max_len, &n)) return false;
    std::string_view v;
    if (!Raw(n, &v)) return false;
    s->assign(v);
    return true;
  }
  bool Digest(Sha256Digest* d) {
    std::string_view v;
    if (!Raw(d->size(), &v)) return false;
    std::copy(v.begin(), v.end(), d->begin());
    return true;
  }
  bool Raw(uint64_t n, std::string_view* out) {
    if (!ok_ || n > in_.size() - pos_) return Fail();
    *out = in_.substr(pos_, n);
    pos_ += n;
    return true;
  }

  bool ok() const { return ok_; }
  bool done() const { return ok_ && pos_ == in_.size(); }
  size_t pos() const { return pos_; }
  size_t remaining() const { return in_.size() - pos_; }

 private:
  bool Fail() {
    ok_ = false;
    return false;
  }
  std::string_view in_;
  size_t pos_ = 0;
  bool ok_ = true;
};

}  // namespace kiln::imager
