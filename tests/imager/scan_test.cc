// Directory scans: chunk hashing shared among threads gives the same
// chunks and manifests as hashing on one thread.

#include "imager/scan.h"

#include <fcntl.h>

#include <catch2/catch.hpp>
#include <thread>

#include "common/file_util.h"
#include "imager/chunker.h"
#include "imager/codec.h"
#include "tests/imager/tree_fixture.h"
#include "tests/support/temp_dir.h"

using namespace kiln;
using namespace kiln::imager;
using namespace kiln::imager::test;
using kiln::test::TempDir;
using kiln::test::WriteTestFile;

TEST_CASE("a large file's chunks come out the same whether one thread hashes them or many") {
  TempDir t;
  // Sizes around the whole-file limit and the 8 MiB read block, so a cut
  // that spans two blocks (the carried tail) is exercised.
  for (size_t size :
       {kWholeFileMax + 1, size_t{8} << 20, (size_t{8} << 20) + 12345, size_t{21} << 20}) {
    std::string data = RandomBytes(size, static_cast<unsigned>(size));
    std::string path = t.Sub("f" + std::to_string(size));
    WriteTestFile(path, data);
    auto expected = ChunkBytes(data);
    for (int cutters : {1, 2}) {
      // A small queue bound makes the poster hash some chunks itself too.
      ChunkHasher hasher(cutters, 1 << 20);
      std::vector<Chunk> chunks;
      std::thread helper;
      if (cutters == 2) helper = std::thread([&] { hasher.Help(); });
      UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
      REQUIRE(fd.valid());
      std::string buffer;
      REQUIRE(HashContent(fd.get(), size, path, &chunks, &buffer, &hasher).ok());
      hasher.Help();
      if (helper.joinable()) helper.join();
      CHECK(chunks == expected);
    }
  }
  // A file that shrank is an error, not a short manifest.
  std::string path = t.Sub("f" + std::to_string(size_t{8} << 20));
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  ChunkHasher hasher(1);
  std::vector<Chunk> chunks;
  std::string buffer;
  Status s = HashContent(fd.get(), (size_t{8} << 20) + 1, path, &chunks, &buffer, &hasher);
  CHECK(s.code() == Code::kIoError);
  CHECK(s.message().find("shrank") != std::string::npos);
  hasher.Help();
}

TEST_CASE("a scan on several threads makes the same manifest as a scan on one") {
  TempDir t;
  MakeRichTree(t.Sub("tree"));
  WriteTestFile(t.Sub("tree/big1"), RandomBytes(9 << 20, 3));
  WriteTestFile(t.Sub("tree/big2"), RandomBytes(3 << 20, 4));
  ScanOptions one;
  one.threads = 1;
  ScanOptions three;
  three.threads = 3;
  auto a = ScanDirectory(t.Sub("tree"), one);
  auto b = ScanDirectory(t.Sub("tree"), three);
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  CHECK(EncodeManifest(a->manifest) == EncodeManifest(b->manifest));
}

TEST_CASE("two files cut at once through one ChunkHasher each get their own chunks") {
  TempDir t;
  std::string a = RandomBytes((size_t{11} << 20) + 777, 21);
  std::string b = RandomBytes((size_t{9} << 20) + 3, 22);
  WriteTestFile(t.Sub("a"), a);
  WriteTestFile(t.Sub("b"), b);
  // Each cutter's Wait may hash the other's chunks; a tiny queue bound makes
  // posters hash too. Every chunk must land in its own file's list.
  for (size_t bound : {size_t{1} << 16, size_t{32} << 20}) {
    ChunkHasher hasher(2, bound);
    std::vector<Chunk> ca, cb;
    Status sa, sb;
    auto cut = [&](const std::string& path, uint64_t size, std::vector<Chunk>* out, Status* s) {
      UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
      std::string buffer;
      *s = fd.valid() ? HashContent(fd.get(), size, path, out, &buffer, &hasher)
                      : IoError("open " + path);
      hasher.Help();
    };
    std::thread other([&] { cut(t.Sub("b"), b.size(), &cb, &sb); });
    cut(t.Sub("a"), a.size(), &ca, &sa);
    other.join();
    REQUIRE(sa.ok());
    REQUIRE(sb.ok());
    CHECK(ca == ChunkBytes(a));
    CHECK(cb == ChunkBytes(b));
  }
}

TEST_CASE("a scan with more threads than files still hashes a lone big file completely") {
  TempDir t;
  std::string big = RandomBytes((size_t{17} << 20) + 5, 31);
  WriteTestFile(t.Sub("tree/only"), big);
  for (int threads : {1, 2, 4}) {
    ScanOptions o;
    o.threads = threads;
    auto r = ScanDirectory(t.Sub("tree"), o);
    REQUIRE(r.ok());
    const Entry* e = nullptr;
    for (const auto& x : r->manifest.entries)
      if (x.path == "only") e = &x;
    REQUIRE(e != nullptr);
    CHECK(e->chunks == ChunkBytes(big));
  }
}
