// The object store: atomic, verified, never half-written.

#include "imager/object_store.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <thread>
#include <tuple>

#include "common/file_util.h"
#include "imager/chunker.h"
#include "imager/image_store.h"
#include "imager/scan.h"
#include "imager/stored_frame.h"
#include "imager/zstd_util.h"
#include "tests/imager/tree_fixture.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"

using namespace kiln;
using namespace kiln::imager;

namespace {

// The zstd frame an uploader sends for these bytes.
std::string frame_of(const std::string& bytes) {
  std::string f;
  Compressor().Compress(bytes, &f);
  return f;
}

// How many temporaries the store under t/images holds ("N\n").
std::string TmpCount(const kiln::test::TempDir& t) {
  return kiln::test::Run({"/bin/sh", "-c", "find " + t.Sub("images/tmp") + " -type f | wc -l"}).out;
}

}  // namespace

TEST_CASE("objects are stored compressed under their digest and read back verified") {
  kiln::test::TempDir t;
  auto store = ObjectStore::Open(t.Sub("images"));
  REQUIRE(store.ok());
  std::string data(100000, 'a');
  auto d = (*store)->Put(data);
  REQUIRE(d.ok());
  CHECK(ToHex(*d) == Sha256Hex(data));
  CHECK((*store)->Has(*d));
  auto frame = (*store)->OpenFrame(*d);
  REQUIRE(frame.ok());
  CHECK(frame->size < 1000);  // zstd
  CHECK(*(*store)->Read(*d) == data);
  CHECK((*store)->Verify(*d).ok());
  auto missing = (*store)->Read(Sha256Of("nope"));
  CHECK(missing.status().code() == Code::kNotFound);
}

TEST_CASE("an object whose stored bytes do not match its digest is reported as corrupt") {
  kiln::test::TempDir t;
  auto store = ObjectStore::Open(t.Sub("images"));
  REQUIRE(store.ok());
  auto d = (*store)->Put("original content");
  REQUIRE(d.ok());
  // Replace the stored frame with a valid frame of other bytes.
  Compressor c;
  std::string other;
  c.Compress("tampered content", &other);
  REQUIRE(WriteFileAtomic((*store)->PathOf(*d), other).ok());
  Status s = (*store)->Verify(*d);
  CHECK(s.code() == Code::kCorruption);
  CHECK(s.message().find(ToHex(*d)) != std::string::npos);
  // And garbage that is not zstd at all.
  REQUIRE(WriteFileAtomic((*store)->PathOf(*d), "garbage").ok());
  CHECK((*store)->Verify(*d).code() == Code::kCorruption);
}

TEST_CASE("uploads are verified: a wrong digest stores nothing, temporaries vanish") {
  kiln::test::TempDir t;
  auto store = ObjectStore::Open(t.Sub("images"));
  REQUIRE(store.ok());
  Compressor c;
  std::string frame;
  c.Compress("real bytes", &frame);
  Sha256Digest claimed = Sha256Of("other bytes");
  {
    ObjectBatch batch(store->get());
    REQUIRE(batch.AddVerified(Sha256Of("real bytes"), frame).ok());
    Status s = batch.AddVerified(claimed, frame);
    CHECK(s.code() == Code::kCorruption);
    CHECK(s.message().find(ToHex(claimed)) != std::string::npos);
    // Nothing is visible before Commit.
    CHECK(!(*store)->Has(Sha256Of("real bytes")));
  }  // dropped without Commit
  CHECK(!(*store)->Has(Sha256Of("real bytes")));
  CHECK(!(*store)->Has(claimed));
  CHECK(TmpCount(t) == "0\n");
  // Truncated and oversized frames.
  ObjectBatch b2(store->get());
  CHECK(b2.AddVerified(Sha256Of("real bytes"), frame.substr(0, frame.size() - 2)).code() ==
        Code::kCorruption);
  std::string huge_frame;
  c.Compress(std::string(2 << 20, 'x'), &huge_frame);
  Status big = b2.AddVerified(Sha256Of(std::string(2 << 20, 'x')), huge_frame);
  CHECK(big.code() == Code::kCorruption);
  CHECK(big.message().find("more than") != std::string::npos);
  ObjectBatch b3(store->get());
  REQUIRE(b3.AddVerified(Sha256Of("real bytes"), frame).ok());
  REQUIRE(b3.Commit().ok());
  CHECK((*store)->Has(Sha256Of("real bytes")));
}

TEST_CASE("a crash's leftover temporaries are removed when the store opens") {
  kiln::test::TempDir t;
  { REQUIRE(ObjectStore::Open(t.Sub("images")).ok()); }
  kiln::test::WriteTestFile(t.Sub("images/tmp/abc.partial"), "half an object");
  kiln::test::WriteTestFile(t.Sub("images/tmp/ab/ab01.partial"), "half another");
  auto store = ObjectStore::Open(t.Sub("images"));
  REQUIRE(store.ok());
  CHECK(::access(t.Sub("images/tmp/abc.partial").c_str(), F_OK) != 0);
  CHECK(::access(t.Sub("images/tmp/ab/ab01.partial").c_str(), F_OK) != 0);
  CHECK(::access(t.Sub("images/tmp/ab").c_str(), F_OK) == 0);  // shards made again
  size_t n = 0;
  REQUIRE((*store)->ForEach([&](const Sha256Digest&, uint64_t) { ++n; }).ok());
  CHECK(n == 0);
}

TEST_CASE("a batch takes objects from several threads at once, Truncate drops the latest") {
  kiln::test::TempDir t;
  auto store = ObjectStore::Open(t.Sub("images"));
  REQUIRE(store.ok());
  std::vector<std::pair<Sha256Digest, std::string>> objects;
  Compressor c;
  for (int i = 0; i < 200; ++i) {
    std::string data = "object number " + std::to_string(i % 150);  // some twice
    std::string frame;
    c.Compress(data, &frame);
    objects.emplace_back(Sha256Of(data), frame);
  }
  ObjectBatch batch(store->get());
  std::atomic<size_t> next{0};
  std::atomic<int> failures{0};
  auto work = [&] {
    for (size_t i = next.fetch_add(1); i < objects.size(); i = next.fetch_add(1))
      if (!batch.AddVerified(objects[i].first, objects[i].second).ok()) ++failures;
  };
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) threads.emplace_back(work);
  for (auto& th : threads) th.join();
  CHECK(failures == 0);
  REQUIRE(batch.added() == 150);  // each distinct object once
  auto count_tmp = [&] { return TmpCount(t); };
  CHECK(count_tmp() == "150\n");
  batch.Truncate(100);
  CHECK(batch.added() == 100);
  CHECK(count_tmp() == "100\n");
  REQUIRE(batch.Commit().ok());
  size_t visible = 0;
  for (const auto& [d, frame] : objects) visible += (*store)->Has(d);
  CHECK(visible > 0);
  std::vector<Sha256Digest> stored;
  REQUIRE((*store)->ForEach([&](const Sha256Digest& d, uint64_t) { stored.push_back(d); }).ok());
  CHECK(stored.size() == 100);
  for (const auto& d : stored) CHECK((*store)->Verify(d).ok());
  CHECK(count_tmp() == "0\n");
}

TEST_CASE("a capture's uploads stay invisible until its commit, a forged object is refused") {
  kiln::test::TempDir t;
  auto store = ImageStore::Open(t.Sub("images"));
  REQUIRE(store.ok());
  kiln::test::WriteTestFile(t.Sub("src/a"), "first file");
  kiln::test::WriteTestFile(t.Sub("src/b"), "second file");
  kiln::test::WriteTestFile(t.Sub("src/c"), "third file");
  auto scan = ScanDirectory(t.Sub("src"), {});
  REQUIRE(scan.ok());
  auto begun = (*store)->BeginCapture("up", EncodeManifest(scan->manifest), "", "");
  REQUIRE(begun.ok());
  REQUIRE(begun->missing.size() == 3);
  auto tmp_count = [&] { return TmpCount(t); };
  // Two good objects and a forged one in one request: the forged one is
  // refused, named; the two verified before it stay staged (uploads of one
  // capture run at once, so a request is not taken back as a whole).
  Sha256Digest da = Sha256Of("first file"), db = Sha256Of("second file"),
               dc = Sha256Of("third file");
  auto bad =
      (*store)->AddObjects(begun->id, EncodeObjectBatch({{da, frame_of("first file")},
                                                         {db, frame_of("second file")},
                                                         {dc, frame_of("not the third file")}}));
  CHECK(bad.status().code() == Code::kCorruption);
  CHECK(bad.status().message().find(ToHex(dc)) != std::string::npos);
  CHECK(tmp_count() == "2\n");
  for (const auto& d : {da, db, dc}) CHECK(!(*store)->objects().Has(d));
  // Sent again, they are not staged twice; nothing is published yet.
  auto ok = (*store)->AddObjects(
      begun->id, EncodeObjectBatch({{da, frame_of("first file")}, {db, frame_of("second file")}}));
  REQUIRE(ok.ok());
  CHECK(*ok == 2);
  CHECK(tmp_count() == "2\n");
  CHECK(!(*store)->objects().Has(da));
  // A commit with an object still missing fails and adds no version.
  auto early = (*store)->CommitCapture(begun->id);
  CHECK(early.status().code() == Code::kFailedPrecondition);
  REQUIRE((*store)->AddObjects(begun->id, EncodeObjectBatch({{dc, frame_of("third file")}})).ok());
  auto v = (*store)->CommitCapture(begun->id);
  REQUIRE(v.ok());
  CHECK(v->version == 1);
  for (const auto& d : {da, db, dc}) CHECK((*store)->objects().Verify(d).ok());
  CHECK(tmp_count() == "0\n");
}

// A re-capture sends its changed files' objects with the manifest and asks
// for the commit in the same exchange: one request when nothing else lacks.
TEST_CASE("objects sent with the offer are verified, staged and committed in one exchange") {
  kiln::test::TempDir t;
  auto store = ImageStore::Open(t.Sub("images"));
  REQUIRE(store.ok());
  auto tmp_count = [&] { return TmpCount(t); };
  kiln::test::WriteTestFile(t.Sub("src/a"), "first file");
  kiln::test::WriteTestFile(t.Sub("src/b"), "second file");
  auto scan = ScanDirectory(t.Sub("src"), {});
  REQUIRE(scan.ok());
  std::string manifest = EncodeManifest(scan->manifest);
  Sha256Digest da = Sha256Of("first file"), db = Sha256Of("second file");

  SECTION("everything sent: committed at once") {
    auto b = (*store)->BeginCapture(
        "img", manifest, "", "",
        EncodeObjectBatch({{da, frame_of("first file")}, {db, frame_of("second file")}}), true);
    REQUIRE(b.ok());
    CHECK(b->missing.empty());
    REQUIRE(b->version);
    CHECK(b->version->version == 1);
    CHECK((*store)->objects().Verify(da).ok());
    CHECK((*store)->objects().Verify(db).ok());
    CHECK(tmp_count() == "0\n");
    // The session is gone: nothing more can be added to it.
    CHECK((*store)->CommitCapture(b->id).status().code() == Code::kNotFound);
  }
  SECTION("some sent: the rest is asked for, nothing is committed yet") {
    auto b = (*store)->BeginCapture("img", manifest, "", "",
                                    EncodeObjectBatch({{da, frame_of("first file")}}), true);
    REQUIRE(b.ok());
    CHECK(!b->version);
    REQUIRE(b->missing.size() == 1);
    CHECK(b->missing[0] == db);
    CHECK(!(*store)->objects().Has(da));  // staged, not published
    REQUIRE((*store)->AddObjects(b->id, EncodeObjectBatch({{db, frame_of("second file")}})).ok());
    auto v = (*store)->CommitCapture(b->id);
    REQUIRE(v.ok());
    CHECK(v->version == 1);
  }
  SECTION("a lying object: refused naming it, nothing staged, no session left") {
    auto b = (*store)->BeginCapture(
        "img", manifest, "", "",
        EncodeObjectBatch({{da, frame_of("first file")}, {db, frame_of("not the second")}}), true);
    REQUIRE(!b.ok());
    CHECK(b.status().code() == Code::kCorruption);
    CHECK(b.status().message().find(ToHex(db)) != std::string::npos);
    CHECK(tmp_count() == "0\n");
    CHECK(!(*store)->objects().Has(da));
    CHECK((*store)->catalog().Get("img").status().code() == Code::kNotFound);
  }
  SECTION("an object the manifest does not use is refused") {
    auto b = (*store)->BeginCapture(
        "img", manifest, "", "", EncodeObjectBatch({{Sha256Of("stranger"), frame_of("stranger")}}),
        true);
    REQUIRE(!b.ok());
    CHECK(b.status().code() == Code::kInvalidArgument);
    CHECK(b.status().message().find("not used by the manifest") != std::string::npos);
    // Checked while the manifest was decoded, then taken back.
    CHECK(tmp_count() == "0\n");
  }
  SECTION("a manifest that does not decode: the objects sent with it are not left staged") {
    auto b = (*store)->BeginCapture("img", manifest.substr(0, manifest.size() / 2), "", "",
                                    EncodeObjectBatch({{da, frame_of("first file")}}), true);
    REQUIRE(!b.ok());
    CHECK(b.status().code() == Code::kInvalidArgument);
    CHECK(tmp_count() == "0\n");
    CHECK(!(*store)->objects().Has(da));
  }
  SECTION("the local target takes the same shortcut") {
    LocalCaptureTarget target(store->get(), "local", "", "");
    auto offer =
        target.Begin(manifest, {{da, frame_of("first file")}, {db, frame_of("second file")}}, true);
    REQUIRE(offer.ok());
    CHECK(offer->missing.empty());
    REQUIRE(offer->committed);
    CHECK(offer->committed->version == 1);
    CHECK((*store)->objects().Verify(db).ok());
  }
}

TEST_CASE("an abandoned capture's staged objects are removed, never published") {
  kiln::test::TempDir t;
  kiln::test::WriteTestFile(t.Sub("src/a"), "abandoned content");
  auto scan = ScanDirectory(t.Sub("src"), {});
  REQUIRE(scan.ok());
  Sha256Digest d = Sha256Of("abandoned content");
  {
    auto store = ImageStore::Open(t.Sub("images"));
    REQUIRE(store.ok());
    auto begun = (*store)->BeginCapture("gone", EncodeManifest(scan->manifest), "", "");
    REQUIRE(begun.ok());
    Compressor c;
    std::string f;
    c.Compress("abandoned content", &f);
    REQUIRE((*store)->AddObjects(begun->id, EncodeObjectBatch({{d, f}})).ok());
  }  // the server goes away before the commit
  auto store = ImageStore::Open(t.Sub("images"));
  REQUIRE(store.ok());
  CHECK(!(*store)->objects().Has(d));
  CHECK(TmpCount(t) == "0\n");
}

TEST_CASE("a batched object is not reported stored before the batch's flush") {
  kiln::test::TempDir t;
  auto images = ImageStore::Open(t.Sub("images"));
  REQUIRE(images.ok());
  ObjectStore& store = (*images)->objects();
  Compressor c;
  std::string frame;
  c.Compress("staged bytes", &frame);
  Sha256Digest d = Sha256Of("staged bytes");
  {
    ObjectBatch batch(&store);
    REQUIRE(batch.AddTrusted(d, frame).ok());
    REQUIRE(batch.AddVerified(d, frame).ok());  // a second add is a no-op
    CHECK(batch.added() == 1);
    // Written, not published: no reader, no listing, no verify sees it.
    CHECK(!store.Has(d));
    CHECK(store.Read(d).status().code() == Code::kNotFound);
    CHECK(store.OpenFrame(d).status().code() == Code::kNotFound);
    size_t listed = 0;
    REQUIRE(store.ForEach([&](const Sha256Digest&, uint64_t) { ++listed; }).ok());
    CHECK(listed == 0);
    REQUIRE(batch.Commit().ok());
    CHECK(store.Has(d));
    auto back = store.Read(d);
    REQUIRE(back.ok());
    CHECK(*back == "staged bytes");
    CHECK(batch.added() == 0);
  }
  CHECK(store.Has(d));  // the batch's end removes only what it did not publish

  // The local capture path: a capture's objects appear at its commit only,
  // so a second capture that begins meanwhile still finds them missing.
  kiln::test::WriteTestFile(t.Sub("src/a"), "local capture content");
  auto scan = ScanDirectory(t.Sub("src"), {});
  REQUIRE(scan.ok());
  std::string manifest = EncodeManifest(scan->manifest);
  Sha256Digest da = Sha256Of("local capture content");
  LocalCaptureTarget target(images->get(), "local", "", "");
  auto missing = target.Begin(manifest, {}, false);
  REQUIRE(missing.ok());
  REQUIRE(missing->missing.size() == 1);
  std::string fa;
  c.Compress("local capture content", &fa);
  REQUIRE(target.PutObjects({{da, fa}}).ok());
  CHECK(!store.Has(da));
  LocalCaptureTarget other(images->get(), "local", "", "");
  auto still = other.Begin(manifest, {}, false);
  REQUIRE(still.ok());
  CHECK(still->missing.size() == 1);
  auto v = target.Commit();
  REQUIRE(v.ok());
  CHECK(v->version == 1);
  CHECK(store.Verify(da).ok());
}

// A re-capture trusts the image's newest version for the objects it shares
// (a version is only committed whole, and gc keeps what a pending capture
// needs): they are neither looked up at the start nor at the commit.
TEST_CASE("a re-capture looks up only the objects the image's newest version lacks") {
  kiln::test::TempDir t;
  auto store = ImageStore::Open(t.Sub("images"));
  REQUIRE(store.ok());
  auto capture = [&](const std::string& image) -> Result<ImageStore::Begun> {
    auto scan = ScanDirectory(t.Sub("src"), {});
    REQUIRE(scan.ok());
    return (*store)->BeginCapture(image, EncodeManifest(scan->manifest), "", "");
  };
  kiln::test::WriteTestFile(t.Sub("src/a"), "first file");
  kiln::test::WriteTestFile(t.Sub("src/b"), "second file");
  auto v1 = capture("img");
  REQUIRE(v1.ok());
  CHECK(v1->missing.size() == 2);
  REQUIRE((*store)
              ->AddObjects(v1->id,
                           EncodeObjectBatch({{Sha256Of("first file"), frame_of("first file")},
                                              {Sha256Of("second file"), frame_of("second file")}}))
              .ok());
  REQUIRE((*store)->CommitCapture(v1->id).ok());

  // Object a disappears behind the store's back: a capture of another
  // image looks it up and asks for it; a re-capture of img trusts v1.
  REQUIRE(::unlink((*store)->objects().PathOf(Sha256Of("first file")).c_str()) == 0);
  auto other = capture("other");
  REQUIRE(other.ok());
  CHECK(other->missing == std::vector<Sha256Digest>{Sha256Of("first file")});
  kiln::test::WriteTestFile(t.Sub("src/c"), "third file");
  auto v2 = capture("img");
  REQUIRE(v2.ok());
  CHECK(v2->missing == std::vector<Sha256Digest>{Sha256Of("third file")});
  // gc meanwhile: the pending capture's objects stay.
  REQUIRE((*store)->Gc(0).ok());
  CHECK((*store)->objects().Has(Sha256Of("second file")));
  REQUIRE((*store)
              ->AddObjects(v2->id,
                           EncodeObjectBatch({{Sha256Of("third file"), frame_of("third file")}}))
              .ok());
  auto committed = (*store)->CommitCapture(v2->id);
  REQUIRE(committed.ok());
  CHECK(committed->version == 2);
  // A commit still refuses an object nobody can vouch for.
  CHECK((*store)->CommitCapture(other->id).status().code() == Code::kFailedPrecondition);
}

TEST_CASE("a large batch's objects go into a pack, readable after reopening, compacted by gc") {
  kiln::test::TempDir t;
  std::vector<std::string> data;
  std::vector<Sha256Digest> ds;
  for (int i = 0; i < 40; ++i) {
    data.push_back(std::string(5000 + i * 997, static_cast<char>('a' + i % 26)) +
                   std::to_string(i));
    ds.push_back(Sha256Of(data.back()));
  }
  {
    auto store = ObjectStore::Open(t.Sub("images"));
    REQUIRE(store.ok());
    ObjectBatch batch(store->get(), 100);  // the first objects loose, the rest packed
    for (size_t i = 0; i < data.size(); ++i)
      REQUIRE(batch.AddVerified(ds[i], frame_of(data[i])).ok());
    batch.Truncate(38);  // the last two never become objects
    CHECK(!(*store)->Has(ds[39]));
    REQUIRE(batch.Commit().ok());
    for (size_t i = 0; i < 38; ++i) CHECK(*(*store)->Read(ds[i]) == data[i]);
    CHECK(!(*store)->Has(ds[38]));
    auto f = (*store)->OpenFrame(ds[30]);
    REQUIRE(f.ok());
    CHECK(f->offset > 0);  // inside a pack
  }
  CHECK(kiln::test::Run({"/bin/sh", "-c", "ls " + t.Sub("images/packs")}).out.find(".idx") !=
        std::string::npos);
  // A pack whose writer died before its index is removed at open.
  kiln::test::WriteTestFile(t.Sub("images/packs/0123456789abcdef.pack"), "half written");
  auto store = ObjectStore::Open(t.Sub("images"));
  REQUIRE(store.ok());
  CHECK(::access(t.Sub("images/packs/0123456789abcdef.pack").c_str(), F_OK) != 0);
  for (size_t i = 0; i < 38; ++i) CHECK(*(*store)->Read(ds[i]) == data[i]);
  size_t listed = 0;
  REQUIRE((*store)->ForEach([&](const Sha256Digest&, uint64_t) { ++listed; }).ok());
  CHECK(listed == 38);
  // gc, a little: one packed object goes; only the index is rewritten.
  auto packs = [&] {
    return kiln::test::Run({"/bin/sh", "-c", "ls " + t.Sub("images/packs")}).out;
  };
  std::string before = packs();
  REQUIRE((*store)->Remove(ds[37]).ok());
  REQUIRE((*store)->CompactPacks().ok());
  CHECK(packs() == before);
  store = ObjectStore::Open(t.Sub("images"));
  REQUIRE(store.ok());
  CHECK(!(*store)->Has(ds[37]));
  CHECK(*(*store)->Read(ds[36]) == data[36]);
  // gc, more: half the packed objects go; the pack is rewritten with the rest.
  for (size_t i = 20; i < 37; i += 2) REQUIRE((*store)->Remove(ds[i]).ok());
  REQUIRE((*store)->CompactPacks().ok());
  CHECK(packs() != before);
  store = ObjectStore::Open(t.Sub("images"));
  REQUIRE(store.ok());
  for (size_t i = 0; i < 38; ++i) {
    INFO(i);
    if ((i >= 20 && i % 2 == 0) || i == 37)
      CHECK(!(*store)->Has(ds[i]));
    else
      CHECK(*(*store)->Read(ds[i]) == data[i]);
  }
}

TEST_CASE("a damaged pack index leaves its objects missing, never wrong") {
  kiln::test::TempDir t;
  std::string data(30000, 'x');
  Sha256Digest d = Sha256Of(data);
  {
    auto store = ObjectStore::Open(t.Sub("images"));
    REQUIRE(store.ok());
    ObjectBatch batch(store->get(), 0);
    REQUIRE(batch.AddVerified(d, frame_of(data)).ok());
    REQUIRE(batch.Commit().ok());
  }
  std::string idx =
      kiln::test::Run({"/bin/sh", "-c", "ls " + t.Sub("images/packs") + "/*.idx"}).out;
  idx.pop_back();
  std::string bytes = *ReadFile(idx);
  bytes[20] ^= 1;
  REQUIRE(WriteFileAtomic(idx, bytes).ok());
  auto store = ObjectStore::Open(t.Sub("images"));
  REQUIRE(store.ok());
  CHECK(!(*store)->Has(d));
  CHECK((*store)->Read(d).status().code() == Code::kNotFound);
}

// A first capture offers its objects before its manifest: what is stored
// already is not asked for and is kept from gc until the capture ends.
TEST_CASE("an opened capture is offered objects before its manifest, and gc keeps them") {
  kiln::test::TempDir t;
  auto store = ImageStore::Open(t.Sub("images"));
  REQUIRE(store.ok());
  kiln::test::WriteTestFile(t.Sub("old/a"), "first file");
  kiln::test::WriteTestFile(t.Sub("src/a"), "first file");
  kiln::test::WriteTestFile(t.Sub("src/b"), "second file");
  Sha256Digest da = Sha256Of("first file"), db = Sha256Of("second file");
  // "first file" is stored by version 1 of an image, which gc drops once
  // version 2 (without it) is there.
  auto capture_old = [&](const Sha256Digest& d, const std::string& bytes) {
    auto old = ScanDirectory(t.Sub("old"), {});
    REQUIRE(old.ok());
    auto b = (*store)->BeginCapture("old", EncodeManifest(old->manifest), "", "",
                                    EncodeObjectBatch({{d, frame_of(bytes)}}), true);
    REQUIRE(b.ok());
    REQUIRE(b->version);
  };
  capture_old(da, "first file");
  CHECK((*store)->OpenCapture("bad name", "", "").status().code() == Code::kInvalidArgument);
  auto id = (*store)->OpenCapture("img", "note", "dir:/src");
  REQUIRE(id.ok());
  CHECK((*store)->OfferObjects("nosuch", {da}).status().code() == Code::kNotFound);
  auto missing = (*store)->OfferObjects(*id, {da, db, db});
  REQUIRE(missing.ok());
  CHECK(*missing == std::vector<Sha256Digest>{db});  // once, and not the stored one
  // The version that held "first file" goes; the open capture keeps it.
  kiln::test::WriteTestFile(t.Sub("old/a"), "replaced");
  capture_old(Sha256Of("replaced"), "replaced");
  auto gc = (*store)->Gc(1);
  REQUIRE(gc.ok());
  CHECK(gc->versions_dropped == 1);
  CHECK((*store)->objects().Has(da));
  CHECK((*store)->CommitCapture(*id).status().code() == Code::kFailedPrecondition);
  REQUIRE((*store)->AddObjects(*id, EncodeObjectBatch({{db, frame_of("second file")}})).ok());
  CHECK(!(*store)->objects().Has(db));  // staged, not published
  // Asked again, a staged object is not missing; one offered before and
  // still not sent still is.
  auto again = (*store)->OfferObjects(*id, {db});
  REQUIRE(again.ok());
  CHECK(again->empty());
  Sha256Digest dc = Sha256Of("never sent");
  REQUIRE((*store)->OfferObjects(*id, {dc}).ok());
  auto still = (*store)->OfferObjects(*id, {dc, db});
  REQUIRE(still.ok());
  CHECK(*still == std::vector<Sha256Digest>{dc});
  auto scan = ScanDirectory(t.Sub("src"), {});
  REQUIRE(scan.ok());
  auto bad = (*store)->AddCaptureManifest(*id, "not a manifest", true);
  CHECK(bad.status().code() == Code::kInvalidArgument);
  auto b = (*store)->AddCaptureManifest(*id, EncodeManifest(scan->manifest), true);
  REQUIRE(b.ok());
  CHECK(b->missing.empty());
  REQUIRE(b->version);
  CHECK(b->version->version == 1);
  CHECK(b->version->note == "note");
  for (const auto& d : {da, db}) CHECK((*store)->objects().Verify(d).ok());
  CHECK((*store)->AddCaptureManifest(*id, EncodeManifest(scan->manifest)).status().code() ==
        Code::kNotFound);  // committed: the capture is over
}

// A stored frame (raw blocks) is verified by hashing its blocks where they
// lie: the same verdicts as through libzstd.
TEST_CASE("an upload's stored frames are verified in place: wrong bytes and oversize refused") {
  kiln::test::TempDir t;
  auto store = ObjectStore::Open(t.Sub("images"));
  REQUIRE(store.ok());
  ObjectBatch batch(store->get());
  std::string bytes = kiln::imager::test::RandomBytes(200 << 10, 11), frame;
  AppendStoredFrame(bytes, &frame);
  Sha256Digest right = Sha256Of(bytes), wrong = Sha256Of("something else");
  auto lie = batch.AddVerified(wrong, frame);
  CHECK(lie.code() == Code::kCorruption);
  CHECK(lie.message().find(ToHex(wrong)) != std::string::npos);
  CHECK(lie.message().find(ToHex(right)) != std::string::npos);  // what they hash to
  // One flipped byte inside the second block.
  std::string flipped = frame;
  flipped[frame.size() - 10] ^= 1;
  CHECK(batch.AddVerified(right, flipped).code() == Code::kCorruption);
  std::string big = kiln::imager::test::RandomBytes(kMaxObjectSize + 1, 12), big_frame;
  AppendStoredFrame(big, &big_frame);
  auto too_big = batch.AddVerified(Sha256Of(big), big_frame);
  CHECK(too_big.code() == Code::kCorruption);
  CHECK(too_big.message().find("allowed") != std::string::npos);
  REQUIRE(batch.AddVerified(right, frame).ok());
  REQUIRE(batch.Commit().ok());
  auto back = (*store)->Read(right);
  REQUIRE(back.ok());
  CHECK(*back == bytes);
}

// A client that failed gives its capture up: what it staged goes now, not
// when the capture would have expired, and what it held from gc is free.
TEST_CASE("an aborted capture leaves nothing staged and is gone") {
  kiln::test::TempDir t;
  auto store = ImageStore::Open(t.Sub("images"));
  REQUIRE(store.ok());
  auto id = (*store)->OpenCapture("img", "", "");
  REQUIRE(id.ok());
  Sha256Digest da = Sha256Of("first file"), db = Sha256Of("second file");
  REQUIRE((*store)->OfferObjects(*id, {da, db}).ok());
  REQUIRE((*store)->AddObjects(*id, EncodeObjectBatch({{da, frame_of("first file")}})).ok());
  CHECK(TmpCount(t) == "1\n");
  REQUIRE((*store)->AbortCapture(*id).ok());
  CHECK(TmpCount(t) == "0\n");
  CHECK(!(*store)->objects().Has(da));
  CHECK((*store)->OfferObjects(*id, {da}).status().code() == Code::kNotFound);
  CHECK((*store)->AbortCapture(*id).code() == Code::kNotFound);
  CHECK((*store)->AbortCapture("nosuch").code() == Code::kNotFound);
}

// Two uploaded objects checked at once give each its own verdict, the same
// as checking them one at a time would.
TEST_CASE("objects checked two at a time: each gets its own verdict, naming it") {
  kiln::test::TempDir t;
  auto store = ObjectStore::Open(t.Sub("images"));
  REQUIRE(store.ok());
  ObjectBatch batch(store->get());
  Compressor c;
  std::string small = "a small compressible object, " + std::string(5000, 'z'), small_frame;
  c.Compress(small, &small_frame);
  std::string random = kiln::imager::test::RandomBytes(300 << 10, 21), stored_frame;
  AppendStoredFrame(random, &stored_frame);
  Sha256Digest ds = Sha256Of(small), dr = Sha256Of(random), other = Sha256Of("other");

  // A compressed frame and a stored one (its blocks hashed where they lie).
  auto [a, b] = batch.VerifyTwo(ds, small_frame, dr, stored_frame);
  CHECK(a.ok());
  CHECK(b.ok());
  // Either one lying: only that one refused, naming its claimed digest.
  std::tie(a, b) = batch.VerifyTwo(ds, small_frame, other, stored_frame);
  CHECK(a.ok());
  CHECK(b.code() == Code::kCorruption);
  CHECK(b.message().find(ToHex(other)) != std::string::npos);
  CHECK(b.message().find(ToHex(dr)) != std::string::npos);  // what it hashes to
  std::tie(a, b) = batch.VerifyTwo(other, small_frame, dr, stored_frame);
  CHECK(a.code() == Code::kCorruption);
  CHECK(a.message().find(ToHex(other)) != std::string::npos);
  CHECK(b.ok());
  // A frame that does not decompress, beside a good one.
  std::tie(a, b) = batch.VerifyTwo(dr, stored_frame, ds, small_frame.substr(0, 10));
  CHECK(a.ok());
  CHECK(b.code() == Code::kCorruption);
  CHECK(b.message().find(ToHex(ds)) != std::string::npos);
  // An oversize stored frame beside a good one.
  std::string big = kiln::imager::test::RandomBytes(kMaxObjectSize + 1, 22), big_frame;
  AppendStoredFrame(big, &big_frame);
  std::tie(a, b) = batch.VerifyTwo(Sha256Of(big), big_frame, ds, small_frame);
  CHECK(a.code() == Code::kCorruption);
  CHECK(a.message().find("allowed") != std::string::npos);
  CHECK(b.ok());
  // An object the store already has is not checked again, whatever is sent
  // for it; its partner still is.
  REQUIRE(batch.AddVerified(ds, small_frame).ok());
  REQUIRE(batch.Commit().ok());
  ObjectBatch next(store->get());
  std::tie(a, b) = next.VerifyTwo(ds, "not a frame", other, stored_frame);
  CHECK(a.ok());
  CHECK(b.code() == Code::kCorruption);
  std::tie(a, b) = next.VerifyTwo(dr, stored_frame, ds, "not a frame");
  CHECK(a.ok());
  CHECK(b.ok());
}
