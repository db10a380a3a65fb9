#include "imager/chunker.h"

#include <array>

namespace kiln::imager {
namespace {

// splitmix64: a fixed, well-mixed sequence for the gear table.
constexpr std::array<uint64_t, 256> MakeGear() {
  std::array<uint64_t, 256> t{};
  uint64_t x = 0x6b696c6e2d636463ULL;  // "kiln-cdc"
  for (auto& v : t) {
    x += 0x9e3779b97f4a7c15ULL;
    uint64_t z = x;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    v = z ^ (z >> 31);
  }
  return t;
}

constexpr std::array<uint64_t, 256> kGear = MakeGear();

// 64 KiB average: 16 bits; the strict mask has two more, the loose two fewer.
// Masks use the high bits, which the shift-left gear hash mixes best.
constexpr uint64_t kMaskStrict = 0xFFFFC00000000000ULL;  // 18 bits
constexpr uint64_t kMaskLoose = 0xFFFC000000000000ULL;   // 14 bits

}  // namespace

size_t NextChunkLength(const uint8_t* data, size_t len) {
  if (len <= kChunkMin) return len;
  size_t end = len < kChunkMax ? len : kChunkMax;
  size_t normal = len < kChunkAvg ? len : kChunkAvg;
  uint64_t h = 0;
  size_t i = kChunkMin;
  for (; i < normal; ++i) {
    h = (h << 1) + kGear[data[i]];
    if (!(h & kMaskStrict)) return i + 1;
  }
  for (; i < end; ++i) {
    h = (h << 1) + kGear[data[i]];
    if (!(h & kMaskLoose)) return i + 1;
  }
  return end;
}

}  // namespace kiln::imager
