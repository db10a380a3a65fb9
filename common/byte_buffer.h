#pragma once
// A growable byte buffer read from the front and filled at the back,
// without the zero-filling of std::string::resize: a server connection's
// input (requests arrive in pieces) and output (a head, a stream's chunks),
// and what the HTTP client receives.

#include <cstddef>
#include <cstring>
#include <memory>
#include <string_view>

namespace kiln {

class ByteBuffer {
 public:
  // A first allocation large enough for a request or an answer's head, so
  // that neither grows piece by piece.
  static constexpr size_t kMinCapacity = 4096;

  std::string_view view() const { return {data_.get() + begin_, end_ - begin_}; }
  bool empty() const { return begin_ == end_; }
  size_t size() const { return end_ - begin_; }

  // Drops n bytes from the front.
  void Consume(size_t n) {
    begin_ += n;
    if (begin_ == end_) begin_ = end_ = 0;
  }
  // Room for at least n more bytes at the back; Commit says how many were
  // written there.
  char* Prepare(size_t n) {
    if (cap_ - end_ >= n) return data_.get() + end_;
    size_t used = end_ - begin_;
    if (cap_ - used >= n) {
      std::memmove(data_.get(), data_.get() + begin_, used);
    } else {
      size_t cap = cap_ ? cap_ : kMinCapacity;
      while (cap < used + n) cap *= 2;
      auto bigger = std::make_unique_for_overwrite<char[]>(cap);
      if (used) std::memcpy(bigger.get(), data_.get() + begin_, used);
      data_ = std::move(bigger);
      cap_ = cap;
    }
    begin_ = 0;
    end_ = used;
    return data_.get() + end_;
  }
  void Commit(size_t n) { end_ += n; }
  void Append(std::string_view s) {
    std::memcpy(Prepare(s.size()), s.data(), s.size());
    Commit(s.size());
  }
  // Gives the memory back (an idle keep-alive connection, a parked stream).
  void Release() {
    if (empty()) {
      data_.reset();
      cap_ = begin_ = end_ = 0;
    }
  }
  size_t capacity() const { return cap_; }

 private:
  std::unique_ptr<char[]> data_;
  size_t cap_ = 0;
  size_t begin_ = 0;
  size_t end_ = 0;
};

}  // namespace kiln
