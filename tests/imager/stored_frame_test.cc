#include "imager/stored_frame.h"

#include <zstd.h>

#include <catch2/catch.hpp>
#include <optional>
#include <random>
#include <string>

#include "imager/zstd_util.h"

using namespace kiln;
using namespace kiln::imager;

namespace {

std::string RandomBytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng());
  return s;
}

std::string Text(size_t n) {
  std::string s;
  for (int i = 0; s.size() < n; ++i)
    s += "line " + std::to_string(i) + ": the quick brown fox jumps over the lazy dog\n";
  s.resize(n);
  return s;
}

}  // namespace

TEST_CASE("stored frames are zstd frames libzstd reads back, at every size-field boundary") {
  // Each size field (1, 2 with the 256 offset, 4 bytes) on both sides of its
  // limit, and block counts around the 128 KiB raw-block limit.
  for (size_t n : {size_t{0}, size_t{1}, size_t{255}, size_t{256}, size_t{257}, size_t{65535},
                   size_t{65791}, size_t{65792}, size_t{65793}, size_t{131071}, size_t{131072},
                   size_t{131073}, size_t{262149}, size_t{1} << 20}) {
    INFO(n);
    std::string data = RandomBytes(n, static_cast<uint32_t>(n));
    std::string frame = "prefix";  // appended to, not replaced
    AppendStoredFrame(data, &frame);
    REQUIRE(frame.substr(0, 6) == "prefix");
    frame.erase(0, 6);
    CHECK(ZSTD_getFrameContentSize(frame.data(), frame.size()) == n);
    CHECK(ZSTD_findFrameCompressedSize(frame.data(), frame.size()) == frame.size());
    size_t blocks = n == 0 ? 1 : (n + (128 << 10) - 1) / (128 << 10);
    CHECK(frame.size() <= n + 4 + 1 + 8 + 3 * blocks);
    std::string out;
    Decompressor d;
    REQUIRE(d.Decompress(frame, n, &out, "frame").ok());
    CHECK(out == data);
  }
}

TEST_CASE("only evenly spread bytes look incompressible, and the compressor then stores them") {
  CHECK(LooksIncompressible(RandomBytes(64 << 10, 1)));
  CHECK(LooksIncompressible(RandomBytes(8 << 10, 2)));
  CHECK_FALSE(LooksIncompressible(RandomBytes(4 << 10, 3)));  // too small to sample
  CHECK_FALSE(LooksIncompressible(Text(64 << 10)));
  CHECK_FALSE(LooksIncompressible(std::string(64 << 10, '\0')));
  // Random but for one zeroed stretch that one slice of the sample sees.
  std::string mostly = RandomBytes(64 << 10, 4);
  std::fill(mostly.begin() + (32 << 10), mostly.begin() + (40 << 10), '\0');
  CHECK_FALSE(LooksIncompressible(mostly));
  // Random bytes drawn from only 200 of the 256 values compress a little.
  std::string skewed = RandomBytes(64 << 10, 5);
  for (auto& c : skewed) c = static_cast<char>(static_cast<uint8_t>(c) % 200);
  CHECK_FALSE(LooksIncompressible(skewed));

  Compressor comp;
  Decompressor dec;
  std::string random = RandomBytes(200 << 10, 6), frame, out;
  comp.Compress(random, &frame);
  CHECK(comp.stored_frames() == 1);  // without running zstd
  std::string stored;
  AppendStoredFrame(random, &stored);
  CHECK(frame == stored);
  REQUIRE(dec.Decompress(frame, random.size(), &out, "random").ok());
  CHECK(out == random);
  std::string text = Text(200 << 10);
  comp.Compress(text, &frame);
  CHECK(frame.size() < text.size() / 10);  // zstd ran
  CHECK(comp.stored_frames() == 1);
  REQUIRE(dec.Decompress(frame, text.size(), &out, "text").ok());
  CHECK(out == text);
}

namespace {
// The blocks ForEachStoredBlock finds, joined; nullopt when it refuses.
std::optional<std::string> Blocks(std::string_view frame) {
  std::string joined;
  if (!ForEachStoredBlock(frame, [&](std::string_view b) { joined.append(b); }))
    return std::nullopt;
  return joined;
}
}  // namespace

TEST_CASE("a stored frame's blocks are read where they lie, and nothing else passes for one") {
  for (size_t n : {size_t{0}, size_t{1}, size_t{255}, size_t{256}, size_t{65791}, size_t{65792},
                   size_t{131072}, size_t{131073}, size_t{1} << 20}) {
    INFO(n);
    std::string data = RandomBytes(n, static_cast<uint32_t>(n + 7)), frame;
    AppendStoredFrame(data, &frame);
    CHECK(Blocks(frame) == data);
    // Cut anywhere, or followed by anything, it is refused.
    for (size_t cut : {size_t{1}, size_t{3}, frame.size() / 2})
      if (cut <= frame.size()) CHECK(Blocks(frame.substr(0, frame.size() - cut)) == std::nullopt);
    CHECK(Blocks(frame + "x") == std::nullopt);
  }
  std::string data = RandomBytes((200 << 10) + 5, 9), frame;
  AppendStoredFrame(data, &frame);
  // A block whose size runs past the stated content size.
  std::string longer = frame;
  longer[5] = static_cast<char>(static_cast<uint8_t>(longer[5]) - 1);  // states one byte less
  CHECK(Blocks(longer) == std::nullopt);
  // An RLE block (type 1) in place of the first raw one.
  std::string rle = frame;
  rle[9] = static_cast<char>(static_cast<uint8_t>(rle[9]) | 2);
  CHECK(Blocks(rle) == std::nullopt);
  // Frames libzstd writes (compressed blocks, a checksum) are libzstd's to read.
  std::string text = Text(64 << 10), z(ZSTD_compressBound(text.size()), '\0');
  z.resize(ZSTD_compress(z.data(), z.size(), text.data(), text.size(), 3));
  CHECK(Blocks(z) == std::nullopt);
  ZSTD_CCtx* cctx = ZSTD_createCCtx();
  ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 1);
  std::string small = "tiny", zc(ZSTD_compressBound(small.size()), '\0');
  zc.resize(ZSTD_compress2(cctx, zc.data(), zc.size(), small.data(), small.size()));
  ZSTD_freeCCtx(cctx);
  CHECK(Blocks(zc) == std::nullopt);
  CHECK(Blocks("") == std::nullopt);
  CHECK(Blocks("\x28\xb5\x2f\xfd") == std::nullopt);
}

TEST_CASE("a stored frame in pieces is the same frame, its bytes viewed where they lie") {
  for (size_t n : {size_t{0}, size_t{100}, size_t{131072}, size_t{131073}, size_t{300000}}) {
    INFO(n);
    std::string data = RandomBytes(n, static_cast<uint32_t>(n + 3)), heads, frame;
    std::vector<std::string_view> pieces{"before"};  // appended to
    StoredFramePieces(data, &heads, &pieces);
    REQUIRE(pieces.front() == "before");
    std::string joined;
    size_t viewed = 0;
    for (size_t i = 1; i < pieces.size(); ++i) {
      auto p = pieces[i];
      joined.append(p);
      bool in_data = p.data() >= data.data() && p.data() + p.size() <= data.data() + data.size();
      bool in_heads =
          p.data() >= heads.data() && p.data() + p.size() <= heads.data() + heads.size();
      CHECK((in_data || in_heads));
      if (in_data && !in_heads) viewed += p.size();
    }
    CHECK(viewed == n);  // every byte of data viewed, none copied
    AppendStoredFrame(data, &frame);
    CHECK(joined == frame);
    std::string out;
    Decompressor d;
    REQUIRE(d.Decompress(joined, n, &out, "pieces").ok());
    CHECK(out == data);
  }
}
