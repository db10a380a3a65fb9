// Long polls on the embedded coordination store: answered on a change, at
// the timeout, once each, and by the destructor when still waiting.

#include "server/store_waits.h"

#include <atomic>
#include <catch2/catch.hpp>
#include <mutex>
#include <thread>
#include <vector>

#include "server/coord/coord_store.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"

using namespace kiln;
using namespace std::chrono_literals;

namespace {

struct Answers {
  std::mutex mu;
  std::vector<http::HttpResponse> got;
  http::Responder Make() {
    return http::Responder([this](http::HttpResponse r) {
      std::lock_guard lock(mu);
      got.push_back(std::move(r));
    });
  }
  size_t size() {
    std::lock_guard lock(mu);
    return got.size();
  }
  std::string body(size_t i) {
    std::lock_guard lock(mu);
    return got.at(i).body;
  }
};

std::unique_ptr<coord::CoordStore> OpenStore(const test::TempDir& t) {
  coord::CoordOptions o;
  o.url = "embedded:" + t.Sub("coord");
  auto store = coord::CoordStore::Open(o);
  REQUIRE(store.ok());
  return std::move(*store);
}

// Answers with the znode's data once it is not empty (or at the timeout).
StoreWaits::Check DataCheck(coord::CoordStore* store, const std::string& path) {
  return [store, path](bool final) -> std::optional<http::HttpResponse> {
    auto g = store->Get(path);
    std::string data = g.ok() ? g->data : "";
    if (data.empty() && !final) return std::nullopt;
    return http::HttpResponse::Text(final && data.empty() ? "timeout" : data);
  };
}

}  // namespace

TEST_CASE("a long poll is answered when its path changes, once, and the stream closes") {
  test::TempDir t;
  auto store = OpenStore(t);
  REQUIRE(store->Create("/jobs", "").ok());
  StoreWaits waits(store.get());
  Answers a;
  // Three requests on one path share one stream; one on a child path too.
  for (int i = 0; i < 3; ++i)
    waits.Wait("/jobs", true, 60s, DataCheck(store.get(), "/jobs"), a.Make());
  waits.Wait("/jobs/j-1", false, 60s, DataCheck(store.get(), "/jobs/j-1"), a.Make());
  CHECK(waits.waiting() == 4);
  CHECK(a.size() == 0);
  // A change that does not satisfy the check keeps them waiting.
  REQUIRE(store->Create("/jobs/other", "").ok());
  REQUIRE(test::WaitUntil([&] { return waits.waiting() == 4; }));
  CHECK(a.size() == 0);
  REQUIRE(store->Set("/jobs", "queued").ok());
  REQUIRE(test::WaitUntil([&] { return a.size() == 3; }));
  for (size_t i = 0; i < 3; ++i) CHECK(a.body(i) == "queued");
  CHECK(waits.waiting() == 1);
  // The child's request: its znode is created with data.
  REQUIRE(store->Create("/jobs/j-1", "done").ok());
  REQUIRE(test::WaitUntil([&] { return a.size() == 4; }));
  CHECK(a.body(3) == "done");
  CHECK(waits.waiting() == 0);
  // Answered already: a later change sends nothing more.
  REQUIRE(store->Set("/jobs", "again").ok());
  REQUIRE(store->Set("/jobs/j-1", "again").ok());
  CHECK(a.size() == 4);
}

TEST_CASE("a long poll whose answer is ready is answered at once, and others at their timeout") {
  test::TempDir t;
  auto store = OpenStore(t);
  REQUIRE(store->Create("/ready", "here").ok());
  StoreWaits waits(store.get());
  Answers a;
  waits.Wait("/ready", false, 60s, DataCheck(store.get(), "/ready"), a.Make());
  REQUIRE(a.size() == 1);  // before Wait returned
  CHECK(a.body(0) == "here");
  waits.Wait("/never", false, 50ms, DataCheck(store.get(), "/never"), a.Make());
  REQUIRE(test::WaitUntil([&] { return a.size() == 2; }));
  CHECK(a.body(1) == "timeout");
  CHECK(waits.waiting() == 0);
}

TEST_CASE("long polls still waiting when the server stops are answered with 503") {
  test::TempDir t;
  auto store = OpenStore(t);
  Answers a;
  {
    StoreWaits waits(store.get());
    for (int i = 0; i < 5; ++i)
      waits.Wait("/n" + std::to_string(i % 2), true, 60s, DataCheck(store.get(), "/x"), a.Make());
    CHECK(waits.waiting() == 5);
  }
  REQUIRE(a.size() == 5);
  std::lock_guard lock(a.mu);
  for (const auto& r : a.got) CHECK(r.status == 503);
}

TEST_CASE("many long polls racing with changes each get exactly one answer") {
  test::TempDir t;
  auto store = OpenStore(t);
  StoreWaits waits(store.get());
  Answers a;
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    for (int i = 0; !stop; ++i) (void)store->Set("/p", std::to_string(i % 3 == 0 ? 0 : i));
  });
  REQUIRE(store->Create("/p", "").ok());
  const int n = 200;
  for (int i = 0; i < n; ++i) {
    auto check = [s = store.get()](bool final) -> std::optional<http::HttpResponse> {
      auto g = s->Get("/p");
      if (!final && (!g.ok() || g->data == "0" || g->data.empty())) return std::nullopt;
      return http::HttpResponse::Text("x");
    };
    waits.Wait("/p", false, std::chrono::milliseconds(i % 7 == 0 ? 5 : 60000), check, a.Make());
  }
  REQUIRE(test::WaitUntil([&] { return a.size() == n; }));
  stop = true;
  writer.join();
  CHECK(waits.waiting() == 0);
  CHECK(a.size() == n);
}

TEST_CASE("wait values: seconds from 0 to the maximum, anything else is refused by name") {
  CHECK(ParseWaitSeconds("0", 60).value() == 0ms);
  CHECK(ParseWaitSeconds("0.25", 60).value() == 250ms);
  CHECK(ParseWaitSeconds("60", 60).value() == 60000ms);
  for (const char* bad :
       {"", "-1", "61", "abc", "1s", " 1", "1e3", "nan", "inf", "0x10", "1.5.2"}) {
    auto r = ParseWaitSeconds(bad, 60);
    INFO(bad);
    REQUIRE(!r.ok());
    CHECK(r.status().code() == Code::kInvalidArgument);
    CHECK(r.status().message() ==
          std::string("wait: expected seconds from 0 to 60, got \"") + bad + "\"");
  }
}
