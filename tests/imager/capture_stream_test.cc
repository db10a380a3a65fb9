// A first capture streams its objects while the tree is read
// (capture_stream.h), here into a real local store: what is sent, what is
// not sent again, and that a failing target stops the capture with its
// error instead of hanging it.

#include "imager/capture_stream.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdint>

#include "common/file_util.h"
#include "imager/capture.h"
#include "imager/image_store.h"
#include "tests/imager/local_store.h"
#include "tests/imager/tree_fixture.h"
#include "tests/support/temp_dir.h"

using namespace kiln;
using namespace kiln::imager;
using kiln::test::TempDir;

namespace {

// A local store's target whose Nth upload (or every offer, with
// fail_offers) fails as a broken server would.
class FailingTarget : public LocalCaptureTarget {
 public:
  FailingTarget(ImageStore* store, int fail_put)
      : LocalCaptureTarget(store, "f", "", ""), fail_put_(fail_put) {}
  bool fail_offers = false;
  Status PutObjects(const ObjectFrames& frames) override {
    if (++puts_ == fail_put_) return Unavailable("server went away");
    return LocalCaptureTarget::PutObjects(frames);
  }
  Result<std::vector<Sha256Digest>> Offer(const std::vector<Sha256Digest>& digests) override {
    if (fail_offers) return Unavailable("offer refused");
    return LocalCaptureTarget::Offer(digests);
  }

 private:
  int fail_put_, puts_ = 0;
};

// A local store's target that records what it was offered and what the
// manifest then still lacked.
class RecordingTarget : public LocalCaptureTarget {
 public:
  explicit RecordingTarget(ImageStore* store) : LocalCaptureTarget(store, "r", "", "") {}
  size_t offered = 0, largest_offer = 0, lacking_at_manifest = SIZE_MAX;
  Result<std::vector<Sha256Digest>> Offer(const std::vector<Sha256Digest>& digests) override {
    offered += digests.size();
    largest_offer = std::max(largest_offer, digests.size());
    return LocalCaptureTarget::Offer(digests);
  }
  Result<CaptureOffer> Begin(const std::string& manifest, const ObjectFrames& eager,
                             bool commit_if_complete) override {
    auto r = LocalCaptureTarget::Begin(manifest, eager, commit_if_complete);
    if (r.ok()) lacking_at_manifest = r->missing.size();
    return r;
  }
};

}  // namespace

TEST_CASE("every object goes before the manifest, which then lacks nothing") {
  TempDir t;
  kiln::test::WriteTestFile(t.Sub("src/big"), kiln::imager::test::RandomBytes(12 << 20, 8));
  for (int i = 0; i < 200; ++i)
    kiln::test::WriteTestFile(t.Sub("src/f" + std::to_string(i)), "file " + std::to_string(i));
  kiln::imager::test::LocalStore ls;
  RecordingTarget target(&ls.store());
  auto r = CaptureDirectory(t.Sub("src"), {}, &target);
  REQUIRE(r.ok());
  CHECK(r->streamed);
  CHECK(target.offered == r->objects);  // each once
  CHECK(target.lacking_at_manifest == 0);
  CHECK(r->objects_sent == r->objects);
}

// An offer is 32 bytes an object and the server takes 1 MiB of them: a
// batch of tiny files is cut by count, not only by bytes.
TEST_CASE("a batch of tiny files is cut by count, its offer within the server's limit") {
  TempDir t;
  const int n = 20000;
  for (int i = 0; i < n; ++i)
    kiln::test::WriteTestFile(t.Sub("src/d" + std::to_string(i % 100) + "/" + std::to_string(i)),
                              std::to_string(i));
  kiln::imager::test::LocalStore ls;
  RecordingTarget target(&ls.store());
  auto r = CaptureDirectory(t.Sub("src"), {}, &target);
  REQUIRE(r.ok());
  CHECK(r->objects == static_cast<uint64_t>(n));
  CHECK(target.offered == static_cast<size_t>(n));
  CHECK(target.largest_offer <= CaptureStreamer::kMaxBatchObjects);
  CHECK(target.largest_offer * sizeof(Sha256Digest) <= (1u << 20));
  CHECK(target.lacking_at_manifest == 0);
}

TEST_CASE("a first capture streams every object once, and the next finds them all stored") {
  TempDir t;
  kiln::imager::test::MakeRichTree(t.Sub("src"));
  // A large file (chunked, kept in the scan's blocks, stored frames in
  // pieces), the same bytes twice (sent once), many small files (copied).
  std::string big = kiln::imager::test::RandomBytes(20 << 20, 3);
  kiln::test::WriteTestFile(t.Sub("src/big"), big);
  kiln::test::WriteTestFile(t.Sub("src/big-again"), big);
  for (int i = 0; i < 300; ++i)
    kiln::test::WriteTestFile(t.Sub("src/many/f" + std::to_string(i)),
                              "small file " + std::to_string(i));
  kiln::imager::test::LocalStore ls;
  auto first = ls.Capture("s", t.Sub("src"));
  CHECK(first.streamed);
  CHECK(first.objects_sent == first.objects);  // each once, none asked for again
  CHECK(first.bytes_sent > 0);
  REQUIRE(ls.Deploy("s", "", t.Sub("dst")).ok());
  CHECK(kiln::imager::test::RsyncDiff(t.Sub("src"), t.Sub("dst")) == "");
  // Without a stat cache the tree is read again and offered; the store has it all.
  auto second = ls.Capture("s", t.Sub("src"));
  CHECK(second.streamed);
  CHECK(second.objects_sent == 0);
  CHECK(second.manifest == first.manifest);
}

TEST_CASE("a target failing during a streamed capture fails it with its error, never hangs") {
  TempDir t;
  kiln::test::WriteTestFile(t.Sub("src/big"), kiln::imager::test::RandomBytes(40 << 20, 5));
  for (int i = 0; i < 100; ++i)
    kiln::test::WriteTestFile(t.Sub("src/f" + std::to_string(i)),
                              kiln::imager::test::RandomBytes(70000, i));
  kiln::imager::test::LocalStore ls;
  for (int fail_at : {1, 3}) {
    INFO(fail_at);
    FailingTarget target(&ls.store(), fail_at);
    auto r = CaptureDirectory(t.Sub("src"), {}, &target);
    REQUIRE(!r.ok());
    CHECK(r.status().code() == Code::kUnavailable);
    CHECK(r.status().message().find("server went away") != std::string::npos);
  }
  FailingTarget offers(&ls.store(), 0);
  offers.fail_offers = true;
  auto r = CaptureDirectory(t.Sub("src"), {}, &offers);
  REQUIRE(!r.ok());
  CHECK(r.status().message().find("offer refused") != std::string::npos);
  CHECK(ls.store().catalog().Get("f").status().code() == Code::kNotFound);
}
