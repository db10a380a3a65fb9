// The object store: atomic, verified, never half-written.

#include "imager/object_store.h"

#include <fcntl.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include "common/file_util.h"
#include "imager/zstd_util.h"
#include "tests/imager/tree_fixture.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"

using namespace kiln;
using namespace kiln::imager;

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
  auto tmp = kiln::test::Run({"/bin/sh", "-c", "ls -A " + t.Sub("images/tmp") + " | wc -l"});
  CHECK(tmp.out == "0\n");
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
  auto store = ObjectStore::Open(t.Sub("images"));
  REQUIRE(store.ok());
  CHECK(::access(t.Sub("images/tmp/abc.partial").c_str(), F_OK) != 0);
  size_t n = 0;
  REQUIRE((*store)->ForEach([&](const Sha256Digest&, uint64_t) { ++n; }).ok());
  CHECK(n == 0);
}
