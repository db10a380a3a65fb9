#include "imager/stream_plan_cache.h"

#include <atomic>
#include <catch2/catch.hpp>
#include <thread>
#include <vector>

#include "common/file_util.h"
#include "tests/imager/local_store.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"

using namespace kiln;
using namespace kiln::imager;

namespace {

Sha256Digest D(const std::string& s) {
  return Sha256Of(s);
}

// A plan whose total says which call made it.
StreamPlan PlanNumbered(uint64_t n) {
  StreamPlan p;
  p.total = n;
  return p;
}

}  // namespace

TEST_CASE("a stream is planned once and shared, again after its generation moves") {
  StreamPlanCache cache(2);
  int calls = 0;
  auto make = [&]() -> Result<StreamPlan> { return PlanNumbered(++calls); };
  auto a = cache.Get({}, D("v1"), 0, make);
  auto again = cache.Get({}, D("v1"), 0, make);
  REQUIRE(a.ok());
  REQUIRE(again.ok());
  CHECK(calls == 1);
  CHECK(a->get() == again->get());  // the same plan, not an equal one
  // A delta to the same target is another stream.
  auto delta = cache.Get(D("v0"), D("v1"), 0, make);
  REQUIRE(delta.ok());
  CHECK((*delta)->total == 2);
  // After a gc (a new generation) the plan is made again; holders of the
  // old one keep it.
  auto after_gc = cache.Get({}, D("v1"), 1, make);
  REQUIRE(after_gc.ok());
  CHECK((*after_gc)->total == 3);
  CHECK((*a)->total == 1);
  CHECK(cache.made() == 3);
}

TEST_CASE("a failed plan is not kept, and the least recently asked plan is dropped first") {
  StreamPlanCache cache(2);
  int calls = 0;
  bool fail = true;
  auto make = [&]() -> Result<StreamPlan> {
    ++calls;
    if (fail) return NotFound("object 00 is not in the store");
    return PlanNumbered(calls);
  };
  auto bad = cache.Get({}, D("v1"), 0, make);
  REQUIRE(!bad.ok());
  CHECK(bad.status().message() == "object 00 is not in the store");
  fail = false;
  REQUIRE(cache.Get({}, D("v1"), 0, make).ok());
  CHECK(calls == 2);
  REQUIRE(cache.Get({}, D("v2"), 0, make).ok());  // cache: v2, v1
  REQUIRE(cache.Get({}, D("v1"), 0, make).ok());  // kept; cache: v1, v2
  CHECK(calls == 3);
  REQUIRE(cache.Get({}, D("v3"), 0, make).ok());  // drops v2
  REQUIRE(cache.Get({}, D("v1"), 0, make).ok());
  CHECK(calls == 4);
  REQUIRE(cache.Get({}, D("v2"), 0, make).ok());
  CHECK(calls == 5);
}

TEST_CASE("deploys asking for a stream while it is being planned wait for that plan") {
  StreamPlanCache cache;
  std::atomic<int> calls{0}, arrived{0};
  std::atomic<bool> release{false};
  auto make = [&]() -> Result<StreamPlan> {
    ++calls;
    // Held until the others have asked (a hang detector bounds the wait).
    kiln::test::WaitUntil([&] { return release.load(); });
    return PlanNumbered(7);
  };
  std::vector<std::thread> threads;
  std::vector<uint64_t> got(8);
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] {
      ++arrived;
      auto p = cache.Get({}, D("v1"), 0, make);
      got[i] = p.ok() ? (*p)->total : 0;
    });
  }
  kiln::test::WaitUntil([&] { return arrived.load() == 8; });
  release = true;
  for (auto& t : threads) t.join();
  CHECK(calls == 1);
  for (uint64_t g : got) CHECK(g == 7);
}

TEST_CASE("the image store plans each stream once until a gc") {
  kiln::imager::test::LocalStore ls;
  kiln::test::TempDir t;
  kiln::test::WriteTestFile(t.Sub("tree/a"), "alpha");
  kiln::test::WriteTestFile(t.Sub("tree/b"), "beta");
  ls.Capture("img", t.Sub("tree"));
  std::string first = ls.Stream("img", "1");
  CHECK(ls.Stream("img", "1") == first);
  CHECK(ls.store().plans_made() == 1);
  kiln::test::WriteTestFile(t.Sub("tree/b"), "beta, changed");
  ls.Capture("img", t.Sub("tree"));
  std::string delta = ls.Stream("img", "2", "1");
  CHECK(ls.Stream("img", "2", "1") == delta);
  CHECK(ls.store().plans_made() == 2);
  REQUIRE(ls.store().Gc(std::nullopt).ok());
  CHECK(ls.Stream("img", "1") == first);  // planned again, the same bytes
  CHECK(ls.store().plans_made() == 3);
}
