// The stream reader against damaged and hostile streams, and fuzzed.

#include "imager/stream.h"

#include <unistd.h>

#include <catch2/catch.hpp>
#include <random>

#include "common/file_util.h"
#include "common/sha256_two.h"
#include "imager/apply.h"
#include "imager/async_sink.h"
#include "imager/codec.h"
#include "imager/scan.h"
#include "imager/zstd_util.h"
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

// Records what a reader hands out.
class CountingSink : public StreamSink {
 public:
  Status OnHeader(const StreamHeader&) override { return Status::Ok(); }
  Status OnEntry(const StreamEntry& e) override {
    for (const auto& p : e.pieces) bytes_expected += p.size;
    ++entries;
    return Status::Ok();
  }
  Status OnChunk(const Sha256Digest& d, std::string_view data) override {
    if (Sha256Of(data) != d) bad = true;  // the reader must never allow this
    bytes += data.size();
    return Status::Ok();
  }
  Status OnDelete(const std::string&) override { return Status::Ok(); }
  Status OnEnd(const StreamCounts&) override { return Status::Ok(); }
  uint64_t entries = 0, bytes = 0, bytes_expected = 0;
  bool bad = false;
};

std::string Header(StreamKind kind) {
  ByteWriter w;
  w.Raw(kStreamMagic);
  w.U8(kStreamFormat);
  w.U8(static_cast<uint8_t>(kind));
  w.Digest({});
  w.Digest({});
  return w.Take();
}

std::string Record(char tag, std::string_view payload) {
  ByteWriter w;
  w.U8(static_cast<uint8_t>(tag));
  w.Varint(payload.size());
  w.Raw(payload);
  return w.Take();
}

std::string EntryRecord(const std::string& path, EntryType type, const std::string& target = "",
                        std::vector<Piece> pieces = {}) {
  StreamEntry se;
  se.entry.path = path;
  se.entry.type = type;
  se.entry.mode = type == EntryType::kHardlink ? 0 : 0755;
  se.entry.target = target;
  for (const auto& p : pieces) se.entry.size += p.size;
  se.pieces = std::move(pieces);
  return Record('E', EncodeStreamEntry(se));
}

std::string ObjectRecord(const Sha256Digest& d, std::string_view content) {
  Compressor c;
  std::string frame;
  c.Compress(content, &frame);
  std::string payload(reinterpret_cast<const char*>(d.data()), 32);
  return Record('O', payload + frame);
}

std::string End(uint64_t entries, uint64_t objects, uint64_t deletes) {
  ByteWriter w;
  w.Varint(entries);
  w.Varint(objects);
  w.Varint(deletes);
  return Record('Z', w.str());
}

}  // namespace

TEST_CASE(
    "an object whose bytes do not match its digest is refused, naming the entry, and nothing "
    "lands") {
  TempDir t;
  Sha256Digest claimed = Sha256Of("the real content");
  std::string s =
      Header(StreamKind::kFull) + EntryRecord("", EntryType::kDir) +
      EntryRecord("victim", EntryType::kFile, "", {{Piece::Kind::kChunk, claimed, 0, 16}}) +
      ObjectRecord(claimed, "forged content!!") + End(2, 1, 0);
  LocalStore ls;
  auto st = ls.Apply(s, t.Sub("dst"));
  REQUIRE(!st.ok());
  CHECK(st.status().code() == Code::kCorruption);
  CHECK(st.status().message() ==
        "/victim: object " + ToHex(claimed) + ": its bytes do not match its digest");
  // Neither the file nor its temporary exists.
  auto ls_out = kiln::test::Run({"/bin/sh", "-c", "ls -A " + t.Sub("dst")});
  CHECK(ls_out.out == "");
}

TEST_CASE("hostile stream entries never reach the filesystem") {
  TempDir t;
  LocalStore ls;
  auto expect = [&](const std::string& body, const std::string& needle) {
    std::string s = Header(StreamKind::kFull) + EntryRecord("", EntryType::kDir) + body;
    auto st = ls.Apply(s, t.Sub("dst"));
    INFO(st.status().ToString());
    CHECK(!st.ok());
    CHECK(st.status().message().find(needle) != std::string::npos);
  };
  expect(EntryRecord("../escape", EntryType::kFile), "\"..\" component");
  expect(EntryRecord("/abs", EntryType::kFile), "is absolute");
  expect(EntryRecord("a", EntryType::kDir) + EntryRecord("a", EntryType::kDir), "duplicate path");
  expect(EntryRecord("b", EntryType::kDir) + EntryRecord("a", EntryType::kDir), "out of order");
  expect(EntryRecord("l", EntryType::kSymlink, "/") + EntryRecord("l/x", EntryType::kFile),
         "/l in " + t.Sub("dst") + " is not a directory");
  expect(EntryRecord("h", EntryType::kHardlink, "../../etc/passwd"), "hard link target");
  expect(EntryRecord("h", EntryType::kHardlink, "zz"), "hard link to a later path");
  expect(Record('D', "x"), "a delete in a full stream");
  expect(End(5, 0, 0), "end record counts 5 entries");
  expect(Record('Q', "?"), "unknown record tag");
  // Nothing was created outside dst.
  CHECK(::access(t.Sub("escape").c_str(), F_OK) != 0);
  CHECK(::access(t.Sub("abs").c_str(), F_OK) != 0);
}

TEST_CASE("a truncated stream is an error, not a silent partial deploy") {
  TempDir t;
  WriteTestFile(t.Sub("src/a"), RandomBytes(100000, 1));
  WriteTestFile(t.Sub("src/b"), RandomBytes(100000, 2));
  LocalStore ls;
  ls.Capture("img", t.Sub("src"));
  std::string s = ls.Stream("img", "");
  for (size_t cut : {size_t{5}, s.size() / 3, s.size() - 1}) {
    auto st = ls.Apply(s.substr(0, cut), t.Sub("dst"));
    CHECK(!st.ok());
    CHECK(st.status().message().find("stream ended early at byte") != std::string::npos);
  }
  CHECK(ls.Apply(s, t.Sub("dst")).ok());
  CHECK(RsyncDiff(t.Sub("src"), t.Sub("dst")) == "");
}

TEST_CASE("fuzz: the stream reader rejects damage cleanly and only ever passes verified bytes") {
  TempDir t;
  MakeRichTree(t.Sub("src"));
  REQUIRE(RemoveAll(t.Sub("src/var")).ok());  // keep the stream small
  LocalStore ls;
  ls.Capture("img", t.Sub("src"));
  WriteTestFile(t.Sub("src/etc/hostname"), "v2\n");
  ls.Capture("img", t.Sub("src"));
  std::string streams[] = {ls.Stream("img", "1"), ls.Stream("img", "2", "1")};
  std::mt19937 rng(7);
  for (const std::string& good : streams) {
    {
      CountingSink sink;
      StreamReader r(&sink);
      REQUIRE(r.Feed(good).ok());
      REQUIRE(r.Finish().ok());
    }
    for (int i = 0; i < 3000; ++i) {
      std::string b = good;
      int edits = 1 + static_cast<int>(rng() % 3);
      for (int k = 0; k < edits; ++k) {
        size_t pos = rng() % b.size();
        switch (rng() % 4) {
          case 0: b[pos] = static_cast<char>(rng()); break;
          case 1: b.erase(pos, 1 + rng() % 16); break;
          case 2: b.insert(pos, std::string(1 + rng() % 4, static_cast<char>(rng()))); break;
          case 3: b.resize(pos); break;
        }
        if (b.empty()) b = "K";
      }
      CountingSink sink;
      StreamReader r(&sink);
      size_t pos = 0;
      Status s;
      while (pos < b.size() && s.ok()) {
        size_t n = std::min(b.size() - pos, static_cast<size_t>(1 + rng() % 5000));
        s = r.Feed(std::string_view(b).substr(pos, n));
        pos += n;
      }
      if (s.ok()) s = r.Finish();
      CHECK(!sink.bad);
      if (!s.ok()) CHECK((s.code() == Code::kCorruption || s.code() == Code::kInvalidArgument));
    }
  }
}

namespace {

// Writes down every call, from whichever thread makes it.
class RecordingSink : public StreamSink {
 public:
  Status OnHeader(const StreamHeader&) override { return Add("H"); }
  Status OnEntry(const StreamEntry& e) override { return Add("E " + e.entry.path); }
  Status OnChunk(const Sha256Digest&, std::string_view data) override {
    return Add("C " + std::string(data));
  }
  Status OnDelete(const std::string& path) override { return Add("D " + path); }
  Status OnEnd(const StreamCounts&) override { return Add("Z"); }
  Status Add(std::string call) {
    if (!fail_at.empty() && call == fail_at) return IoError("disk full at " + call);
    calls.push_back(std::move(call));
    return Status::Ok();
  }
  std::vector<std::string> calls;
  std::string fail_at;
};

StreamEntry NamedEntry(const std::string& path) {
  StreamEntry e;
  e.entry.path = path;
  return e;
}

}  // namespace

TEST_CASE("AsyncSink hands every call on in order and OnEnd returns when all are made") {
  RecordingSink inner;
  std::vector<std::string> expected;
  {
    AsyncSink async(&inner, 64);  // a tiny bound: producer and consumer take turns
    REQUIRE(async.OnHeader({}).ok());
    expected.push_back("H");
    for (int i = 0; i < 200; ++i) {
      std::string path = "f" + std::to_string(i);
      REQUIRE(async.OnEntry(NamedEntry(path)).ok());
      expected.push_back("E " + path);
      std::string data = "bytes of " + path;
      expected.push_back("C " + data);
      if (i % 2)
        REQUIRE(async.OnChunk({}, data).ok());
      else
        REQUIRE(async.OnChunkData({}, std::move(data)).ok());
    }
    REQUIRE(async.OnDelete("gone").ok());
    expected.push_back("D gone");
    REQUIRE(async.OnEnd({}).ok());
    expected.push_back("Z");
    // Everything was applied when OnEnd returned, before the thread stops.
    CHECK(inner.calls == expected);
  }
  CHECK(inner.calls == expected);
}

TEST_CASE("AsyncSink reports the inner sink's first error and makes no call after it") {
  RecordingSink inner;
  inner.fail_at = "E f5";
  AsyncSink async(&inner);
  REQUIRE(async.OnHeader({}).ok());
  Status s;
  for (int i = 0; i < 1000 && s.ok(); ++i) s = async.OnEntry(NamedEntry("f" + std::to_string(i)));
  Status end = async.OnEnd({});
  CHECK(end.code() == Code::kIoError);
  CHECK(end.message().find("disk full at E f5") != std::string::npos);
  CHECK(inner.calls.size() == 6);  // H, f0..f4
  CHECK(inner.calls.back() == "E f4");
  // Sticky: later calls fail the same way.
  CHECK(async.OnDelete("x").code() == Code::kIoError);
}

TEST_CASE("a deploy through AsyncSink is exact, and a damaged stream still applies nothing bad") {
  LocalStore ls;
  TempDir t;
  MakeRichTree(t.Sub("src"));
  std::string big = RandomBytes(3 << 20, 9);
  WriteTestFile(t.Sub("src/big"), big);
  ls.Capture("img", t.Sub("src"));
  std::string stream = ls.Stream("img", "1");
  {
    auto applier = Applier::Open(t.Sub("dst"), {});
    REQUIRE(applier.ok());
    AsyncSink async(applier->get());
    StreamReader reader(&async);
    // Odd piece sizes, as a network delivers them.
    for (size_t pos = 0; pos < stream.size(); pos += 7777)
      REQUIRE(reader.Feed(std::string_view(stream).substr(pos, 7777)).ok());
    REQUIRE(reader.Finish().ok());
  }
  CHECK(RsyncDiff(t.Sub("src"), t.Sub("dst")) == "");
  // One flipped byte inside the big file's objects: the reader refuses it,
  // and the file is never placed.
  std::string bad = stream;
  Sha256Digest second = ChunkBytes(big).at(1).digest;
  size_t at = bad.rfind(std::string(reinterpret_cast<const char*>(second.data()), 32));
  REQUIRE(at != std::string::npos);
  bad[at + 32 + 5000] ^= 0x40;
  auto applier = Applier::Open(t.Sub("dst2"), {});
  REQUIRE(applier.ok());
  Status s;
  {
    AsyncSink async(applier->get());
    StreamReader reader(&async);
    s = reader.Feed(bad);
    if (s.ok()) s = reader.Finish();
  }
  (*applier)->Abort();
  CHECK(!s.ok());
  CHECK(::access(t.Sub("dst2/big").c_str(), F_OK) != 0);
}

TEST_CASE("AsyncSink: a chunk's error stops the stream, OnEnd's own error is returned") {
  {
    RecordingSink inner;
    inner.fail_at = "C bad";
    AsyncSink async(&inner, 16);
    REQUIRE(async.OnEntry(NamedEntry("f")).ok());
    Status s = async.OnChunkData({}, std::string("bad"));
    for (int i = 0; i < 100 && s.ok(); ++i) s = async.OnChunkData({}, std::string("more"));
    // The reader learns of it at the latest at its OnEnd.
    Status end = async.OnEnd({});
    CHECK(end.code() == Code::kIoError);
    CHECK(end.message().find("disk full at C bad") != std::string::npos);
    if (!s.ok()) CHECK(s.code() == Code::kIoError);
    CHECK(inner.calls == std::vector<std::string>{"E f"});  // nothing after the error
  }
  {
    RecordingSink inner;
    inner.fail_at = "Z";
    AsyncSink async(&inner);
    REQUIRE(async.OnEntry(NamedEntry("g")).ok());
    REQUIRE(async.OnChunk({}, "x").ok());
    Status end = async.OnEnd({});
    CHECK(end.code() == Code::kIoError);
    CHECK(inner.calls == std::vector<std::string>{"E g", "C x"});
  }
}

TEST_CASE("AsyncSink dropped before OnEnd stops without making the queued calls") {
  RecordingSink inner;
  std::vector<std::string> made;
  {
    AsyncSink async(&inner);
    for (int i = 0; i < 500; ++i) REQUIRE(async.OnEntry(NamedEntry("e" + std::to_string(i))).ok());
  }  // no OnEnd: e.g. the transfer failed; the destructor joins the thread
  // Whatever was made is a prefix of what was queued, in order, and the end
  // was never signalled.
  REQUIRE(inner.calls.size() <= 500);
  for (size_t i = 0; i < inner.calls.size(); ++i)
    CHECK(inner.calls[i] == "E e" + std::to_string(i));
}

TEST_CASE("objects checked two at a time: a bad one is named, the ones before it are delivered") {
  LocalStore ls;
  TempDir t;
  std::string big = RandomBytes(2 << 20, 31);
  WriteTestFile(t.Sub("src/big"), big);
  ls.Capture("img", t.Sub("src"));
  std::string stream = ls.Stream("img", "1");
  auto chunks = ChunkBytes(big);
  REQUIRE(chunks.size() >= 6);
  // Whole, in one piece (every object's successor is at hand, so they go
  // in pairs): every byte delivered and verified.
  {
    CountingSink sink;
    StreamReader r(&sink);
    REQUIRE(r.Feed(stream).ok());
    REQUIRE(r.Finish().ok());
    CHECK(!sink.bad);
    CHECK(sink.bytes == big.size());
    CHECK(r.counts().objects == chunks.size());
    // In pairs (all but possibly the last) where the CPU hashes two at
    // once; elsewhere one at a time.
    if (Sha256TwoInterleaved())
      CHECK(r.counts().objects_paired >= chunks.size() - 1);
    else
      CHECK(r.counts().objects_paired == 0);
  }
  // One flipped byte in the first, then in the second object of a pair.
  for (size_t k : {size_t{2}, size_t{3}}) {
    CAPTURE(k);
    std::string bad = stream;
    const Sha256Digest& d = chunks[k].digest;
    size_t at = bad.rfind(std::string(reinterpret_cast<const char*>(d.data()), 32));
    REQUIRE(at != std::string::npos);
    bad[at + 32 + 100] ^= 0x01;
    CountingSink sink;
    StreamReader r(&sink);
    Status s = r.Feed(bad);
    CHECK(s.code() == Code::kCorruption);
    CHECK(s.message().find(ToHex(d)) != std::string::npos);
    CHECK(!sink.bad);
    // Exactly the objects before the bad one reached the sink.
    uint64_t before = 0;
    for (size_t i = 0; i < k; ++i) before += chunks[i].size;
    CHECK(sink.bytes == before);
  }
}
