// Manifest encoding, validation and the fuzzed decoder; the chunker.

#include "imager/manifest.h"

#include <catch2/catch.hpp>
#include <random>

#include "imager/chunker.h"
#include "imager/codec.h"
#include "imager/path_util.h"
#include "imager/scan.h"
#include "tests/imager/tree_fixture.h"

using namespace kiln;
using namespace kiln::imager;

namespace {

Entry Dir(std::string path) {
  Entry e;
  e.path = std::move(path);
  e.type = EntryType::kDir;
  e.mode = 0755;
  return e;
}

Entry File(std::string path, std::string_view content) {
  Entry e;
  e.path = std::move(path);
  e.type = EntryType::kFile;
  e.mode = 0644;
  e.size = content.size();
  e.chunks = ChunkBytes(content);
  return e;
}

Manifest Sample() {
  Manifest m;
  m.entries.push_back(Dir(""));
  m.entries.push_back(Dir("etc"));
  Entry f = File("etc/passwd", "root:x:0:0\n");
  f.xattrs = {{"security.capability", std::string("\x01\x00\x00\x02", 4)}, {"user.a", "b"}};
  f.mtime_sec = -5;  // before 1970
  f.mtime_nsec = 999'999'999;
  m.entries.push_back(f);
  Entry l;
  l.path = "etc/pw";
  l.type = EntryType::kHardlink;
  l.target = "etc/passwd";
  m.entries.push_back(l);
  Entry s;
  s.path = "link";
  s.type = EntryType::kSymlink;
  s.mode = 0777;
  s.target = "/etc/../etc/passwd";
  m.entries.push_back(s);
  Entry d;
  d.path = "null";
  d.type = EntryType::kCharDev;
  d.mode = 0666;
  d.dev_major = 1;
  d.dev_minor = 3;
  m.entries.push_back(d);
  return m;
}

}  // namespace

TEST_CASE("manifests round-trip exactly and their digest depends only on content") {
  Manifest m = Sample();
  REQUIRE(ValidateManifest(m).ok());
  std::string bytes = EncodeManifest(m);
  auto back = DecodeManifest(bytes);
  REQUIRE(back.ok());
  CHECK(back->entries == m.entries);
  CHECK(EncodeManifest(*back) == bytes);
  Manifest m2 = Sample();
  CHECK(Sha256Hex(EncodeManifest(m2)) == Sha256Hex(bytes));
  m2.entries[2].mtime_nsec = 1;
  CHECK(Sha256Hex(EncodeManifest(m2)) != Sha256Hex(bytes));
  CHECK(m.Find("etc/pw")->target == "etc/passwd");
  CHECK(m.Find("etc/nope") == nullptr);
}

TEST_CASE("validation refuses every broken invariant, naming the entry") {
  auto expect = [](Manifest m, const std::string& needle) {
    Status s = ValidateManifest(m);
    INFO(s.ToString());
    CHECK(!s.ok());
    CHECK(s.message().find(needle) != std::string::npos);
    // The decoder refuses the same bytes.
    auto d = DecodeManifest(EncodeManifest(m));
    CHECK(!d.ok());
  };
  Manifest m = Sample();
  std::swap(m.entries[1], m.entries[2]);
  expect(m, "parent directory is missing");
  m = Sample();
  m.entries.insert(m.entries.begin() + 2, m.entries[2]);
  expect(m, "(/etc/passwd): duplicate path");
  m = Sample();
  m.entries.push_back(File("link/inside", "x"));
  SortEntries(&m.entries);
  expect(m, "(/link/inside): parent /link is a symlink, not a directory");
  m = Sample();
  m.entries[3].target = "etc/zzz";
  expect(m, "(/etc/pw): hard link to /etc/zzz, which is not an earlier entry");
  m = Sample();
  m.entries[2].path = "etc/../passwd";
  expect(m, "\"..\" component");
  m = Sample();
  m.entries[2].size += 1;
  expect(m, "chunks add up to");
  m = Sample();
  m.entries[0].type = EntryType::kFile;
  expect(m, "root");
  m = Sample();
  m.entries[2].xattrs = {{"user.b", ""}, {"user.a", ""}};
  expect(m, "out of order");
  m = Sample();
  m.entries[3].mode = 0644;
  expect(m, "no attributes of its own");
}

TEST_CASE("path validation and archive name normalisation") {
  CHECK(ValidateEntryPath("").ok());
  CHECK(ValidateEntryPath("a/b.c/..d").ok());
  for (const std::string bad : {"/a", "a//b", "a/./b", "a/..", "../a", "a/"})
    CHECK(!ValidateEntryPath(bad).ok());
  CHECK(!ValidateEntryPath(std::string("a\0b", 3)).ok());
  CHECK(!ValidateEntryPath(std::string(300, 'x')).ok());
  CHECK(*NormalizeArchivePath("./etc/") == "etc");
  CHECK(*NormalizeArchivePath("./") == "");
  CHECK(*NormalizeArchivePath(".") == "");
  CHECK(!NormalizeArchivePath("/etc/passwd").ok());
  CHECK(NormalizeArchivePath("../../etc/passwd").status().message().find("\"..\"") !=
        std::string::npos);
  CHECK(!NormalizeArchivePath("a/../../b").ok());
  CHECK(IsUnder("a/b", "a"));
  CHECK(!IsUnder("ab", "a"));
  CHECK(IsUnder("x", ""));
}

TEST_CASE("fuzz: the manifest decoder never crashes and never accepts an invalid manifest") {
  std::string good = EncodeManifest(Sample());
  std::mt19937 rng(42);
  int accepted = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string b = good;
    int edits = 1 + static_cast<int>(rng() % 4);
    for (int k = 0; k < edits; ++k) {
      size_t pos = rng() % b.size();
      switch (rng() % 4) {
        case 0: b[pos] = static_cast<char>(rng()); break;
        case 1: b.erase(pos, 1 + rng() % 8); break;
        case 2: b.insert(pos, 1, static_cast<char>(rng())); break;
        case 3: b.resize(pos); break;
      }
      if (b.empty()) b = "K";
    }
    auto m = DecodeManifest(b);
    if (m.ok()) {
      ++accepted;
      CHECK(ValidateManifest(*m).ok());
    } else {
      CHECK(m.status().code() == Code::kCorruption);
    }
  }
  CHECK(accepted < 20000);
}

TEST_CASE("varints reject overflow and truncation") {
  ByteWriter w;
  w.Varint(UINT64_MAX);
  w.Svarint(INT64_MIN);
  w.Svarint(-1);
  ByteReader r(w.str());
  uint64_t u;
  int64_t s1, s2;
  REQUIRE(r.Varint(&u));
  CHECK(u == UINT64_MAX);
  REQUIRE(r.Svarint(&s1));
  CHECK(s1 == INT64_MIN);
  REQUIRE(r.Svarint(&s2));
  CHECK(s2 == -1);
  CHECK(r.done());
  std::string over(11, '\xff');
  ByteReader bad(over);
  CHECK(!bad.Varint(&u));
  ByteReader trunc("\x80");
  CHECK(!trunc.Varint(&u));
}

TEST_CASE("content-defined chunks stay put when bytes are inserted before them") {
  std::string data = test::RandomBytes(8 * 1024 * 1024, 7);
  auto a = ChunkBytes(data);
  REQUIRE(a.size() > 60);
  uint64_t total = 0;
  for (const auto& c : a) {
    CHECK(c.size <= kChunkMax);
    total += c.size;
  }
  CHECK(total == data.size());
  for (size_t i = 0; i + 1 < a.size(); ++i) CHECK(a[i].size >= kChunkMin);
  std::string edited = data;
  edited.insert(3 * 1024 * 1024, "inserted bytes");
  auto b = ChunkBytes(edited);
  size_t shared = 0;
  DigestSet in_a;
  for (const auto& c : a) in_a.insert(c.digest);
  for (const auto& c : b) shared += in_a.count(c.digest);
  // Only the chunk around the insertion differs (one or two, with resync).
  CHECK(shared >= a.size() - 3);
  CHECK(ChunkBytes(data) == a);  // deterministic
  // Files up to 1 MiB are one object.
  CHECK(ChunkBytes(std::string_view(data).substr(0, kWholeFileMax)).size() == 1);
  CHECK(ChunkBytes("").empty());
}
