#include "imager/stored_frame.h"

#include <algorithm>
#include <array>
#include <cstdint>

namespace kiln::imager {
namespace {

// The sample: kSlices evenly spaced pieces of kSliceBytes each.
constexpr size_t kSlices = 8;
constexpr size_t kSliceBytes = 512;
constexpr size_t kSampleBytes = kSlices * kSliceBytes;
constexpr size_t kMaxRawBlock = 128 * 1024;  // zstd's Block_Maximum_Size

void PutLe(uint64_t v, int bytes, std::string* out) {
  for (int i = 0; i < bytes; ++i) out->push_back(static_cast<char>(v >> (8 * i)));
}

}  // namespace

bool LooksIncompressible(std::string_view data) {
  // Too small to sample well; zstd is quick on it anyway.
  if (data.size() < 2 * kSampleBytes) return false;
  // Four tables, summed after: consecutive increments of one table wait
  // on each other whenever two bytes in a row are equal or close in time;
  // spread over four they do not (this was 3% of a capture's client CPU).
  std::array<std::array<uint32_t, 256>, 4> counts{};
  size_t step = (data.size() - kSliceBytes) / (kSlices - 1);
  for (size_t s = 0; s < kSlices; ++s) {
    const auto* p = reinterpret_cast<const uint8_t*>(data.data() + s * step);
    for (size_t i = 0; i < kSliceBytes; i += 4) {
      ++counts[0][p[i]];
      ++counts[1][p[i + 1]];
      ++counts[2][p[i + 2]];
      ++counts[3][p[i + 3]];
    }
  }
  std::array<uint32_t, 256> count;
  for (size_t v = 0; v < 256; ++v)
    count[v] = counts[0][v] + counts[1][v] + counts[2][v] + counts[3][v];
  // The sum of squared counts is smallest when every value is equally
  // common: n + n(n-1)/256 expected for uniformly random bytes (69,616 for
  // n = 4,096, standard deviation about 360). Text, code and tables are
  // far above it (a skew of a few percent in the values adds thousands);
  // compressed and random data lie within a few deviations.
  uint64_t sum = 0;
  for (uint32_t c : count) sum += uint64_t{c} * c;
  constexpr uint64_t n = kSampleBytes;
  constexpr uint64_t uniform = n + n * (n - 1) / 256;
  return sum <= uniform + uniform / 40;  // +2.5%: about five deviations
}

void StoredFramePieces(std::string_view data, std::string* heads,
                       std::vector<std::string_view>* pieces) {
  heads->clear();
  PutLe(0xFD2FB528, 4, heads);  // magic number
  // Frame header descriptor: Single_Segment_Flag (bit 5), no checksum, no
  // dictionary; Frame_Content_Size_Flag (bits 7-6) picks the size field:
  // 1 byte (flag 0, single segment), 2 bytes holding size - 256 (flag 1),
  // 4 bytes (flag 2) or 8 bytes (flag 3).
  uint64_t size = data.size();
  if (size < 256) {
    heads->push_back(static_cast<char>(0x20));
    PutLe(size, 1, heads);
  } else if (size < 65536 + 256) {
    heads->push_back(static_cast<char>(0x60));
    PutLe(size - 256, 2, heads);
  } else if (size <= UINT32_MAX) {
    heads->push_back(static_cast<char>(0xA0));
    PutLe(size, 4, heads);
  } else {
    heads->push_back(static_cast<char>(0xE0));
    PutLe(size, 8, heads);
  }
  const size_t frame_head = heads->size();
  // Raw blocks: a 3-byte little-endian header (Last_Block bit 0, Block_Type
  // 0 = raw in bits 1-2, Block_Size in bits 3-23), then the bytes. An empty
  // frame still has its one (empty, last) block. Every header is written
  // before any view of heads is taken: it does not move after.
  size_t at = 0;
  do {
    size_t n = std::min(kMaxRawBlock, data.size() - at);
    bool last = at + n == data.size();
    PutLe((uint64_t{n} << 3) | (last ? 1 : 0), 3, heads);
    at += n;
  } while (at < data.size());
  std::string_view h(*heads);
  pieces->push_back(h.substr(0, frame_head + 3));
  at = 0;
  size_t block = 0;
  do {
    size_t n = std::min(kMaxRawBlock, data.size() - at);
    if (block > 0) pieces->push_back(h.substr(frame_head + 3 * block, 3));
    if (n > 0) pieces->push_back(data.substr(at, n));
    at += n;
    ++block;
  } while (at < data.size());
}

void AppendStoredFrame(std::string_view data, std::string* out) {
  std::string heads;
  std::vector<std::string_view> pieces;
  StoredFramePieces(data, &heads, &pieces);
  size_t total = 0;
  for (auto p : pieces) total += p.size();
  out->reserve(out->size() + total);
  for (auto p : pieces) out->append(p);
}

}  // namespace kiln::imager

namespace kiln::imager::stored_frame_internal {

bool ParseHeader(std::string_view frame, uint64_t* size, size_t* at) {
  if (frame.size() < 6) return false;
  const auto* p = reinterpret_cast<const uint8_t*>(frame.data());
  if (p[0] != 0x28 || p[1] != 0xB5 || p[2] != 0x2F || p[3] != 0xFD) return false;
  auto le = [&](size_t from, int bytes) {
    uint64_t v = 0;
    for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | p[from + static_cast<size_t>(i)];
    return v;
  };
  // The four descriptors AppendStoredFrame writes (see there), no others:
  // the size field's length, and what the field adds to the size.
  int bytes;
  uint64_t bias = 0;
  switch (p[4]) {
    case 0x20: bytes = 1; break;
    case 0x60: bytes = 2, bias = 256; break;
    case 0xA0: bytes = 4; break;
    case 0xE0: bytes = 8; break;
    default: return false;
  }
  *at = 5 + static_cast<size_t>(bytes);
  if (frame.size() < *at) return false;
  *size = le(5, bytes) + bias;
  return true;
}

}  // namespace kiln::imager::stored_frame_internal
