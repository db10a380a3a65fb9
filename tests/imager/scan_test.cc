// Directory scans: chunk hashing shared among threads gives the same
// chunks and manifests as hashing on one thread; the stat cache is taken
// for unchanged inodes only.

#include "imager/scan.h"

#include <fcntl.h>
#include <fnmatch.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <limits>
#include <thread>

#include "common/file_util.h"
#include "imager/chunker.h"
#include "imager/codec.h"
#include "imager/path_util.h"
#include "imager/stat_cache.h"
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

// The cache's word is taken for an unchanged inode: a forged record proves
// the scan used it instead of reading (no listxattr, no readlink); a change
// (which sets ctime) makes the scan read again.
TEST_CASE("a re-scan takes an unchanged entry's xattrs and target from the stat cache") {
  TempDir t;
  std::string src = t.Sub("src");
  WriteTestFile(src + "/f", "content");
  REQUIRE(::symlink("f", (src + "/link").c_str()) == 0);
  bool xattrs = ::lsetxattr((src + "/f").c_str(), "user.kiln", "real", 4, 0) == 0;
  StatCache cache;
  ScanOptions so;
  so.cache = &cache;
  auto first = ScanDirectory(src, so);
  REQUIRE(first.ok());
  // The files are younger than the racy window: nothing was recorded.
  CHECK(cache.size() == 0);

  auto key_of = [&](const std::string& rel) {
    struct stat st {};
    REQUIRE(::lstat((src + "/" + rel).c_str(), &st) == 0);
    return StatKey{static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino),
                   static_cast<uint64_t>(st.st_size),
                   st.st_mtim.tv_sec * 1'000'000'000LL + st.st_mtim.tv_nsec,
                   st.st_ctim.tv_sec * 1'000'000'000LL + st.st_ctim.tv_nsec};
  };
  const int64_t later = std::numeric_limits<int64_t>::max() / 2;  // every entry is old
  const Entry* f = first->manifest.Find("f");
  REQUIRE(f);
  cache.Record("f", {key_of("f"), f->chunks, {{"user.kiln", "forged"}}, {}}, later);
  cache.Record("link", {key_of("link"), {}, {}, "forged-target"}, later);
  // Saved and loaded: the records survive the round trip.
  REQUIRE(cache.Save(t.Sub("cache")).ok());
  StatCache loaded = StatCache::Load(t.Sub("cache"));
  REQUIRE(loaded.size() == 2);
  so.cache = &loaded;
  auto second = ScanDirectory(src, so);
  REQUIRE(second.ok());
  CHECK(second->files_hashed == 0);
  CHECK(second->manifest.Find("f")->xattrs == std::vector<Xattr>{{"user.kiln", "forged"}});
  CHECK(second->manifest.Find("link")->target == "forged-target");

  // Changed inodes are read again: a new xattr value (ctime moves), a
  // replaced symlink (a new inode).
  if (xattrs)
    REQUIRE(::lsetxattr((src + "/f").c_str(), "user.kiln", "new", 3, 0) == 0);
  else
    REQUIRE(::chmod((src + "/f").c_str(), 0600) == 0);
  REQUIRE(::unlink((src + "/link").c_str()) == 0);
  REQUIRE(::symlink("f", (src + "/link").c_str()) == 0);
  auto third = ScanDirectory(src, so);
  REQUIRE(third.ok());
  CHECK(third->manifest.Find("link")->target == "f");
  if (xattrs)
    CHECK(third->manifest.Find("f")->xattrs == std::vector<Xattr>{{"user.kiln", "new"}});
  else
    CHECK(third->manifest.Find("f")->xattrs.empty());
}

TEST_CASE("a stat cache of another format or damaged is ignored, never trusted") {
  TempDir t;
  StatCache c;
  c.Record("a", {{1, 2, 0, 3, 4}, {}, {{"user.x", "v"}}, "t"},
           std::numeric_limits<int64_t>::max() / 2);
  REQUIRE(c.Save(t.Sub("c")).ok());
  std::string good = ReadFile(t.Sub("c")).value();
  CHECK(StatCache::Load(t.Sub("c")).size() == 1);
  // The previous format (chunks only) is not read as this one.
  WriteTestFile(t.Sub("old"), "KILNSC1\n" + good.substr(8));
  CHECK(StatCache::Load(t.Sub("old")).size() == 0);
  // Every truncation of a good cache loads empty or whole, never half.
  for (size_t n = 8; n < good.size(); ++n) {
    WriteTestFile(t.Sub("cut"), good.substr(0, n));
    CHECK(StatCache::Load(t.Sub("cut")).size() == 0);
  }
  // Flipped bytes: a load may keep the record (a flip in a value) but
  // never crashes.
  for (size_t i = 8; i < good.size(); ++i) {
    std::string bad = good;
    bad[i] ^= 0x5a;
    WriteTestFile(t.Sub("flip"), bad);
    CHECK(StatCache::Load(t.Sub("flip")).size() <= 1);
  }
}

// The reference: every pattern through fnmatch, as IsExcluded always did.
static bool ExcludedByFnmatch(const std::vector<std::string>& patterns, const std::string& rel) {
  if (rel.empty()) return false;
  std::string base(BaseName(rel));
  for (const auto& p : patterns) {
    if (p.find('/') != std::string::npos) {
      std::string_view pat = p;
      while (!pat.empty() && pat.front() == '/') pat.remove_prefix(1);
      while (!pat.empty() && pat.back() == '/') pat.remove_suffix(1);
      if (::fnmatch(std::string(pat).c_str(), rel.c_str(), FNM_PATHNAME) == 0) return true;
    } else if (::fnmatch(p.c_str(), base.c_str(), 0) == 0) {
      return true;
    }
  }
  return false;
}

TEST_CASE("exclude patterns: literal ones compared, globs through fnmatch, same answers") {
  const std::vector<std::string> pool = {"/proc",
                                         "/etc/kiln/agent.json",
                                         "var/lib/kiln-agent/",
                                         "*.pem",
                                         "ssh_host_*",
                                         "/etc/ssh/ssh_host_*",
                                         "motd",
                                         "/",
                                         "a\\*b",
                                         "[ab]",
                                         "/var/log",
                                         "log",
                                         "a*b"};
  const std::vector<std::string> paths = {"proc",
                                          "proc/1",
                                          "etc/kiln/agent.json",
                                          "etc/kiln",
                                          "var/lib/kiln-agent",
                                          "var/lib/kiln-agent/x",
                                          "x.pem",
                                          "etc/ssl/x.pem",
                                          "etc/ssh/ssh_host_rsa_key",
                                          "ssh_host_x",
                                          "etc/motd",
                                          "motd",
                                          "a*b",
                                          "axb",
                                          "a",
                                          "b",
                                          "var/log",
                                          "log",
                                          "x/log"};
  uint64_t seed = 42;
  for (int round = 0; round < 2000; ++round) {
    std::vector<std::string> patterns;
    for (int k = 0; k < 4; ++k) {
      seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
      if (seed % 3) patterns.push_back(pool[seed % pool.size()]);
    }
    ExcludeSet set(patterns);
    for (const auto& p : paths) {
      INFO(p);
      CHECK(set.Matches(p) == ExcludedByFnmatch(patterns, p));
      CHECK(IsExcluded(patterns, p) == ExcludedByFnmatch(patterns, p));
    }
  }
}

TEST_CASE("a tree of many directories lists on several threads into the same manifest and counts") {
  TempDir t;
  std::string src = t.Sub("src");
  for (int d = 0; d < 60; ++d)
    for (int f = 0; f < 4; ++f)
      WriteTestFile(
          src + "/d" + std::to_string(d % 7) + "/s" + std::to_string(d) + "/f" + std::to_string(f),
          "file " + std::to_string(d * 10 + f));
  // Hard links across directories listed by different threads.
  for (int d = 1; d < 60; d += 9)
    REQUIRE(
        ::link((src + "/d0/s0/f0").c_str(),
               (src + "/d" + std::to_string(d % 7) + "/s" + std::to_string(d) + "/h").c_str()) ==
        0);
  WriteTestFile(src + "/d3/skip.tmp", "excluded");
  auto scan = [&](int threads, StatCache* cache) {
    ScanOptions so;
    so.threads = threads;
    so.cache = cache;
    so.excludes = {"*.tmp", "/d5/s12"};
    auto r = ScanDirectory(src, so);
    REQUIRE(r.ok());
    return std::move(*r);
  };
  ScanResult one = scan(1, nullptr), four = scan(4, nullptr);
  CHECK(EncodeManifest(one.manifest) == EncodeManifest(four.manifest));
  CHECK(one.files == four.files);
  CHECK(one.files_hashed == four.files_hashed);
  CHECK(one.manifest.Find("d3/skip.tmp") == nullptr);
  CHECK(one.manifest.Find("d5/s12") == nullptr);
  CHECK(one.manifest.Find("d1/s1/h")->type == EntryType::kHardlink);
}

TEST_CASE("names that sort around '/' come out in path order without a sort") {
  // A directory "a" and siblings "a-b", "a.conf", "a b" sort between "a"
  // and "a/x" by path; the walk must interleave them. Random names from
  // bytes on both sides of '/', at several depths, and the scan (whose
  // manifest is refused if not in path order) on one and on four threads.
  TempDir t;
  std::string src = t.Sub("src");
  const std::string alphabet = std::string(" !#-.0Aa~") + "\x7f" + "\xc3\xa9";
  uint64_t seed = 12345;
  auto next = [&] {
    seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
    return static_cast<size_t>(seed >> 33);
  };
  auto name = [&] {
    std::string n = "a";
    for (size_t len = next() % 3; len > 0; --len) {
      char c = alphabet[next() % alphabet.size()];
      if (c == '\xc3') {
        n += "\xc3\xa9";
        continue;
      }
      if (c == '\xa9') continue;
      n += c;
    }
    return n;
  };
  std::vector<std::string> dirs{src};
  for (int i = 0; i < 400; ++i) {
    std::string parent = dirs[next() % dirs.size()];
    std::string p = parent + "/" + name();
    if (::access(p.c_str(), F_OK) == 0) continue;  // taken already
    if (next() % 3 == 0) {
      if (::mkdir(p.c_str(), 0755) == 0) dirs.push_back(p);
    } else {
      WriteTestFile(p, "x");
    }
  }
  for (int threads : {1, 4}) {
    ScanOptions so;
    so.threads = threads;
    auto r = ScanDirectory(src, so);
    INFO(threads << " threads");
    REQUIRE(r.ok());
    CHECK(r->manifest.entries.size() > 200);
    CHECK(ValidateManifest(r->manifest).ok());
  }
  // And the shape that matters most, spelled out.
  TempDir u;
  for (const char* p : {"a/x", "a/y/z", "a-b", "a.conf", "a b", "ab", "a/b.c", "a/b/c"})
    WriteTestFile(u.Sub(std::string("t/") + p), "x");
  auto r = ScanDirectory(u.Sub("t"), {});
  REQUIRE(r.ok());
  std::vector<std::string> paths;
  for (const auto& e : r->manifest.entries) paths.push_back(e.path);
  CHECK(paths == std::vector<std::string>{"", "a", "a b", "a-b", "a.conf", "a/b", "a/b.c", "a/b/c",
                                          "a/x", "a/y", "a/y/z", "ab"});
}
