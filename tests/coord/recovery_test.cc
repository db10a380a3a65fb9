// What the embedded store does with a damaged directory: a torn tail is
// cut off and reported, acknowledged updates before it survive; damage with
// valid data after it, in an older segment, or in a snapshot refuses to
// start, naming the file and the offset. Plus a fuzz of whole-directory
// recovery.

#include <dirent.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <random>

#include "common/file_util.h"
#include "common/log.h"
#include "server/coord/coord_store.h"
#include "server/coord/embedded/embedded_store.h"
#include "tests/coord/backends.h"
#include "tests/support/process.h"

using namespace kiln;
using namespace kiln::coord;
using namespace kiln::test;

namespace {

std::unique_ptr<CoordStore> Open(const std::string& dir, CoordOptions o = {}) {
  log::SetLevel(log::Level::kError);
  auto s = OpenEmbeddedStore(o, dir);
  INFO(s.status().ToString());
  REQUIRE(s.ok());
  return std::move(*s);
}

std::vector<std::string> Files(const std::string& dir, const std::string& prefix) {
  std::vector<std::string> out;
  if (DIR* d = opendir(dir.c_str())) {
    while (dirent* e = readdir(d))
      if (std::string(e->d_name).rfind(prefix, 0) == 0) out.push_back(dir + "/" + e->d_name);
    closedir(d);
  }
  std::sort(out.begin(), out.end());
  return out;
}

void Rewrite(const std::string& path, const std::function<void(std::string&)>& edit) {
  std::string s = *ReadFile(path);
  edit(s);
  REQUIRE(WriteFileAtomic(path, s).ok());
}

// Fills a store with n znodes /r/0.., each holding its number.
void Fill(const std::string& dir, int n, CoordOptions o = {}) {
  auto s = Open(dir, o);
  MustOk(s->EnsurePath("/r"));
  for (int i = 0; i < n; ++i) Must(s->Create("/r/" + std::to_string(i), std::to_string(i)));
}

}  // namespace

TEST_CASE("a torn tail is cut off and reported, everything before it survives") {
  TempDir t;
  std::string dir = t.Sub("c");
  Fill(dir, 10);
  auto seg = Files(dir, "log.");
  REQUIRE(seg.size() == 1);
  std::string before = *ReadFile(seg[0]);
  Rewrite(seg[0], [](std::string& s) { s.resize(s.size() - 5); });  // tear the last record

  auto s = Open(dir);
  Json d = s->Describe();
  INFO(d.dump());
  REQUIRE(d["recovery"].contains("torn_tail"));
  std::string torn = d["recovery"]["torn_tail"];
  CHECK(torn.find(seg[0]) == 0);
  CHECK(torn.find("runs past the end of the file") != std::string::npos);
  for (int i = 0; i < 9; ++i)
    CHECK(Must(s->Get("/r/" + std::to_string(i))).data == std::to_string(i));
  CHECK(!Must(s->Exists("/r/9")).has_value());
  // The store goes on appending where the good records end.
  Must(s->Create("/r/9", "again"));
  s.reset();
  auto again = Open(dir);
  CHECK(Must(again->Get("/r/9")).data == "again");
  CHECK(!again->Describe()["recovery"].contains("torn_tail"));
}

TEST_CASE("a damaged record with valid records after it refuses to start, naming file and offset") {
  TempDir t;
  std::string dir = t.Sub("c");
  Fill(dir, 10);
  auto seg = Files(dir, "log.")[0];
  size_t size = ReadFile(seg)->size();
  Rewrite(seg, [&](std::string& s) { s[size / 2] ^= 0x01; });
  auto s = OpenEmbeddedStore({}, dir);
  REQUIRE(!s.ok());
  CHECK(s.status().code() == Code::kCorruption);
  std::string m = s.status().message();
  INFO(m);
  CHECK(m.find("coordination log " + seg + " offset ") == 0);
  CHECK(m.find("a valid record follows") != std::string::npos);
  // Nothing was cut: the operator can still inspect or repair the file.
  CHECK(ReadFile(seg)->size() == size);
}

TEST_CASE("recovery refuses damaged snapshots and gaps in the log") {
  TempDir t;
  std::string dir = t.Sub("c");
  CoordOptions small;
  small.segment_bytes = 4096;  // roll (and snapshot) every few dozen updates
  {
    auto s = Open(dir, small);
    MustOk(s->EnsurePath("/r"));
    for (int i = 0; i < 300; ++i) Must(s->Create("/r/" + std::to_string(i), std::string(40, 'd')));
    REQUIRE(WaitUntil([&] { return s->Describe()["snapshot"]["taken"].get<int>() > 0; }));
  }
  auto snaps = Files(dir, "snapshot.");
  REQUIRE(!snaps.empty());

  SECTION("a flipped byte in the snapshot") {
    Rewrite(snaps.back(), [](std::string& s) { s[s.size() / 2] ^= 0x10; });
    auto s = OpenEmbeddedStore({}, dir);
    REQUIRE(!s.ok());
    CHECK(s.status().code() == Code::kCorruption);
    CHECK(s.status().message().find("snapshot " + snaps.back() + " offset ") == 0);
  }
  SECTION("a truncated snapshot") {
    Rewrite(snaps.back(), [](std::string& s) { s.resize(s.size() - 20); });
    auto s = OpenEmbeddedStore({}, dir);
    REQUIRE(!s.ok());
    CHECK(s.status().message().find(snaps.back()) != std::string::npos);
  }
  SECTION("a missing segment") {
    auto segs = Files(dir, "log.");
    REQUIRE(segs.size() >= 3);
    unlink(segs[1].c_str());
    auto s = OpenEmbeddedStore({}, dir);
    REQUIRE(!s.ok());
    CHECK(s.status().code() == Code::kCorruption);
    CHECK(s.status().message().find(segs[2]) != std::string::npos);
    CHECK(s.status().message().find("expected") != std::string::npos);
  }
  SECTION("an interrupted snapshot is ignored") {
    REQUIRE(WriteFileAtomic(dir + "/snapshot.00000000000000999999.tmp", "half").ok());
    auto s = Open(dir);
    CHECK(Must(s->Children("/r")).children.size() == 300);
    CHECK(Files(dir, "snapshot.00000000000000999999").empty());
  }
}

TEST_CASE("a second store on the same directory is refused") {
  TempDir t;
  auto first = Open(t.Sub("c"));
  auto second = OpenEmbeddedStore({}, t.Sub("c"));
  REQUIRE(!second.ok());
  CHECK(second.status().code() == Code::kUnavailable);
  CHECK(second.status().message().find(t.Sub("c")) != std::string::npos);
}

TEST_CASE("fuzz: recovery from a damaged log either works or reports corruption") {
  TempDir t;
  std::string pristine = t.Sub("pristine");
  {
    auto s = Open(pristine);
    MustOk(s->EnsurePath("/f"));
    auto sess = Must(s->CreateSession(std::chrono::seconds(60)));
    std::string second;
    for (int i = 0; i < 30; ++i) {
      auto c =
          Must(s->Create(CreateOp{.path = "/f/n-", .data = std::to_string(i), .sequential = true}));
      if (i == 1) second = c.path;
      if (i % 5 == 0)
        Must(s->Create(
            CreateOp{.path = "/f/e" + std::to_string(i), .ephemeral = true, .session = sess.id}));
    }
    Must(s->Multi({SetOp{.path = "/f", .data = "m"}, DeleteOp{.path = second}}));
  }
  std::string seg = Files(pristine, "log.")[0];
  std::string base = *ReadFile(seg);
  std::mt19937 rng(99);
  int ok = 0, corrupt = 0;
  for (int iter = 0; iter < 60; ++iter) {
    std::string dir = t.Sub("run" + std::to_string(iter));
    REQUIRE(MakeDirs(dir).ok());
    std::string s = base;
    for (int e = 0, n = 1 + static_cast<int>(rng() % 3); e < n && !s.empty(); ++e) {
      size_t at = rng() % s.size();
      if (rng() % 3 == 0)
        s.resize(at);
      else
        s[at] ^= static_cast<char>(1 << (rng() % 8));
    }
    REQUIRE(WriteFileAtomic(dir + "/" + seg.substr(seg.rfind('/') + 1), s).ok());
    auto store = OpenEmbeddedStore({}, dir);
    if (store.ok()) {
      ++ok;
      // Whatever survived is a consistent tree: every child's parent exists.
      auto kids = (*store)->Children("/f");
      if (kids.ok())
        for (const auto& k : kids->children) CHECK((*store)->Exists("/f/" + k).ok());
    } else {
      ++corrupt;
      CHECK(store.status().code() == Code::kCorruption);
      CHECK(store.status().message().find(dir) != std::string::npos);
    }
  }
  CHECK(ok > 0);
  CHECK(corrupt > 0);
}
