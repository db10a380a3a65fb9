#pragma once
// zstd compression of image objects. Each object is stored and sent as one
// zstd frame carrying its content size, so a reader knows the size before it
// decompresses and can refuse a frame that claims more than it allows.
//
// Contexts are expensive to create; Compressor and Decompressor keep one and
// are meant to be reused, one per thread (not thread-safe).

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace kiln::imager {

inline constexpr int kDefaultZstdLevel = 3;

class Compressor {
 public:
  explicit Compressor(int level = kDefaultZstdLevel);
  ~Compressor();
  Compressor(const Compressor&) = delete;
  Compressor& operator=(const Compressor&) = delete;
  // Replaces *out with one frame holding data.
  void Compress(std::string_view data, std::string* out);
  // How many frames were stored without zstd (stored_frame.h): the frame
  // is the one zstd would write, so only this tells the two paths apart.
  uint64_t stored_frames() const { return stored_frames_; }

 private:
  void* cctx_;
  int level_;
  uint64_t stored_frames_ = 0;
};

class Decompressor {
 public:
  Decompressor();
  ~Decompressor();
  Decompressor(const Decompressor&) = delete;
  Decompressor& operator=(const Decompressor&) = delete;
  // Decompresses exactly one frame into *out. The frame must state its
  // content size and it must be at most max_size; trailing bytes, a
  // truncated frame or a size mismatch are kCorruption naming `what`.
  Status Decompress(std::string_view frame, uint64_t max_size, std::string* out,
                    std::string_view what);

 private:
  void* dctx_;
};

}  // namespace kiln::imager
