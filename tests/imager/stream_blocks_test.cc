// StreamBlocks: received pieces regrouped into blocks of whole records.

#include "imager/stream_blocks.h"

#include <catch2/catch.hpp>
#include <random>
#include <set>

#include "imager/apply.h"
#include "imager/codec.h"
#include "imager/stream.h"
#include "tests/imager/local_store.h"
#include "tests/imager/tree_fixture.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"

using namespace kiln;
using namespace kiln::imager;
using namespace kiln::imager::test;
using kiln::test::TempDir;
using kiln::test::WriteTestFile;

namespace {

// The offsets at which the stream's records end (the header counts as one),
// found by walking it independently of StreamBlocks.
std::set<size_t> RecordEnds(std::string_view stream) {
  std::set<size_t> ends{kStreamHeaderSize};
  size_t pos = kStreamHeaderSize;
  while (pos < stream.size()) {
    ByteReader r(stream.substr(pos));
    uint8_t tag;
    uint64_t len;
    REQUIRE((r.U8(&tag) && r.Varint(&len)));
    pos += r.pos() + len;
    ends.insert(pos);
  }
  REQUIRE(pos == stream.size());
  return ends;
}

struct Cut {
  std::vector<std::string> blocks;
  std::string joined;
};

// Feeds stream to a StreamBlocks in pieces of the sizes `next` gives.
template <typename NextSize>
Cut CutInto(std::string_view stream, NextSize next) {
  Cut c;
  StreamBlocks b([&](std::string&& block) {
    c.joined += block;
    c.blocks.push_back(std::move(block));
  });
  for (size_t pos = 0; pos < stream.size();) {
    size_t n = std::min(next(), stream.size() - pos);
    b.Add(stream.substr(pos, n));
    pos += n;
  }
  b.Flush();
  return c;
}

std::string TestStream(TempDir& t, LocalStore& ls) {
  MakeRichTree(t.Sub("src"));
  // Several blocks' worth: large chunks (up to an object's 1 MiB) and many
  // small files between them.
  WriteTestFile(t.Sub("src/big"), RandomBytes(7 << 20, 3));
  for (int i = 0; i < 300; ++i)
    WriteTestFile(t.Sub("src/f" + std::to_string(i)), RandomBytes(100 + i * 37, i));
  ls.Capture("img", t.Sub("src"));
  return ls.Stream("img", "1");
}

}  // namespace

TEST_CASE("StreamBlocks cuts a stream only where records end, whatever the piece sizes") {
  LocalStore ls;
  TempDir t;
  std::string stream = TestStream(t, ls);
  std::set<size_t> ends = RecordEnds(stream);
  std::mt19937 rng(5);
  for (size_t piece : {size_t{1}, size_t{7}, size_t{7777}, size_t{65536}, size_t{0}}) {
    CAPTURE(piece);
    Cut c = CutInto(stream, [&] { return piece ? piece : 1 + rng() % 300000; });
    CHECK(c.joined == stream);
    REQUIRE(c.blocks.size() >= 3);
    size_t pos = 0;
    for (size_t i = 0; i < c.blocks.size(); ++i) {
      pos += c.blocks[i].size();
      CHECK(ends.count(pos) == 1);
      // Every block but the last reached the target, or stopped before a
      // record that would not fit its buffer.
      if (i + 1 < c.blocks.size())
        CHECK((c.blocks[i].size() >= StreamBlocks::kTarget ||
               c.blocks[i].size() + c.blocks[i + 1].size() > StreamBlocks::kTarget));
    }
  }
}

TEST_CASE("StreamBlocks carries on framing after a flush inside a record") {
  LocalStore ls;
  TempDir t;
  std::string stream = TestStream(t, ls);
  std::set<size_t> ends = RecordEnds(stream);
  // A transfer that broke mid-record: what arrived is flushed, the resumed
  // bytes continue the same record.
  size_t cut = (3 << 20) + 12345;
  REQUIRE(ends.count(cut) == 0);
  std::vector<std::string> blocks;
  StreamBlocks b([&](std::string&& block) { blocks.push_back(std::move(block)); });
  b.Add(std::string_view(stream).substr(0, cut));
  b.Flush();
  size_t flushed = blocks.size();
  for (size_t pos = cut; pos < stream.size(); pos += 50000)
    b.Add(std::string_view(stream).substr(pos, 50000));
  b.Flush();
  std::string joined;
  size_t pos = 0;
  for (size_t i = 0; i < blocks.size(); ++i) {
    joined += blocks[i];
    pos += blocks[i].size();
    if (i + 1 == flushed)
      CHECK(pos == cut);
    else
      CHECK(ends.count(pos) == 1);
  }
  CHECK(joined == stream);
  // And the reader, given those blocks, applies the stream exactly.
  auto applier = Applier::Open(t.Sub("dst"), {});
  REQUIRE(applier.ok());
  StreamReader reader(applier->get());
  for (const auto& block : blocks) REQUIRE(reader.Feed(block).ok());
  REQUIRE(reader.Finish().ok());
  CHECK(RsyncDiff(t.Sub("src"), t.Sub("dst")) == "");
}

TEST_CASE("StreamBlocks passes an unreadable length through for the reader to refuse") {
  LocalStore ls;
  TempDir t;
  std::string stream = TestStream(t, ls);
  SECTION("a record longer than any record may be") {
    // The first record after the header claims 2^40 bytes.
    std::string bad = stream.substr(0, kStreamHeaderSize);
    ByteWriter w;
    w.U8('E');
    w.Varint(uint64_t{1} << 40);
    bad += w.str();
    bad += stream.substr(kStreamHeaderSize + 3, 5 << 20);
    Cut c = CutInto(bad, [] { return size_t{4096}; });
    CHECK(c.joined == bad);
    CHECK(c.blocks.size() >= 2);  // not held back waiting for 1 TiB
    auto applier = Applier::Open(t.Sub("dst"), {});
    REQUIRE(applier.ok());
    StreamReader reader(applier->get());
    Status s = reader.Feed(c.blocks[0]);
    CHECK(s.code() == Code::kCorruption);
    CHECK(s.message().find("too large") != std::string::npos);
  }
  SECTION("a length that never ends") {
    // Followed by more than a block's worth: the bytes are passed on as they
    // come, not held back for a record that never completes.
    std::string bad = stream.substr(0, kStreamHeaderSize) + "E" + std::string(20, '\xff') +
                      RandomBytes(3 * StreamBlocks::kTarget, 23);
    std::vector<std::string> blocks;
    StreamBlocks b([&](std::string&& block) { blocks.push_back(std::move(block)); });
    for (size_t pos = 0; pos < bad.size(); pos += 1000)
      b.Add(std::string_view(bad).substr(pos, 1000));
    CHECK(blocks.size() >= 2);  // before any Flush
    b.Flush();
    std::string joined;
    for (const auto& block : blocks) joined += block;
    CHECK(joined == bad);
    auto applier = Applier::Open(t.Sub("dst"), {});
    REQUIRE(applier.ok());
    StreamReader reader(applier->get());
    Status s = reader.Feed(joined);
    CHECK(s.code() == Code::kCorruption);
    CHECK(s.message().find("bad record length") != std::string::npos);
  }
}

TEST_CASE("StreamBlocks frames records of no bytes") {
  // A header, then empty records between ordinary ones: each ends where its
  // head does.
  std::string s(kStreamHeaderSize, 'h');
  for (int i = 0; i < 20000; ++i) {
    ByteWriter w;
    w.U8('Q');
    w.Varint(i % 3 == 0 ? 0 : 200);
    s += w.str();
    s += std::string(i % 3 == 0 ? 0 : 200, 'x');
  }
  std::set<size_t> ends = RecordEnds(s);
  Cut c = CutInto(s, [] { return size_t{333}; });
  CHECK(c.joined == s);
  REQUIRE(c.blocks.size() >= 2);
  size_t pos = 0;
  for (const auto& block : c.blocks) {
    pos += block.size();
    CHECK(ends.count(pos) == 1);
  }
}

TEST_CASE("StreamBlocks fills recycled buffers again") {
  LocalStore ls;
  TempDir t;
  std::string stream = TestStream(t, ls);
  std::set<const char*> handed;
  size_t reused = 0, blocks = 0;
  StreamBlocks* self = nullptr;
  StreamBlocks b([&](std::string&& block) {
    ++blocks;
    if (!handed.insert(block.data()).second) ++reused;
    self->Recycle(std::move(block));
  });
  self = &b;
  for (size_t pos = 0; pos < stream.size(); pos += 100000)
    b.Add(std::string_view(stream).substr(pos, 100000));
  b.Flush();
  REQUIRE(blocks >= 3);
  CHECK(reused >= blocks - 2);
}
