// Image records in the embedded coordination store.

#include "server/coord_image_catalog.h"

#include <catch2/catch.hpp>
#include <thread>
#include <vector>

#include "server/coord/coord_store.h"
#include "tests/support/temp_dir.h"

using namespace kiln;

TEST_CASE("image records live at /kiln/images/<name> and concurrent updates never lose one") {
  kiln::test::TempDir t;
  coord::CoordOptions o;
  o.url = "embedded:" + t.Sub("coord");
  auto store = coord::CoordStore::Open(o);
  REQUIRE(store.ok());
  auto cat = CoordImageCatalog::Open(store->get());
  REQUIRE(cat.ok());
  CHECK((*cat)->Get("web").status().message() == "no image named \"web\"");
  CHECK((*cat)->List()->empty());

  // Two threads add versions at once: compare-and-set keeps all of them.
  std::vector<std::thread> threads;
  for (int k = 0; k < 2; ++k)
    threads.emplace_back([&] {
      for (int i = 0; i < 20; ++i) {
        auto r = (*cat)->Update("web", [](imager::ImageRecord& rec, bool) {
          imager::VersionRecord v;
          v.version = rec.next++;
          v.manifest = std::string(64, 'a');
          rec.versions.push_back(v);
          rec.current = v.version;
          return Status::Ok();
        });
        REQUIRE(r.ok());
      }
    });
  for (auto& th : threads) th.join();
  auto rec = (*cat)->Get("web");
  REQUIRE(rec.ok());
  CHECK(rec->versions.size() == 40);
  CHECK(rec->next == 41);
  for (size_t i = 0; i < rec->versions.size(); ++i)
    CHECK(rec->versions[i].version == static_cast<int>(i + 1));
  CHECK(*(*cat)->List() == std::vector<std::string>{"web"});

  // The znode holds the documented JSON.
  auto raw = (*store)->Get("/kiln/images/web");
  REQUIRE(raw.ok());
  auto j = ParseJson(raw->data);
  REQUIRE(j.ok());
  CHECK((*j)["current"] == 40);

  // A mutator's error aborts without writing.
  auto bad = (*cat)->Update("web", [](imager::ImageRecord& r, bool) {
    r.current = 1;
    return FailedPrecondition("no");
  });
  CHECK(bad.status().message() == "no");
  CHECK((*cat)->Get("web")->current == 40);
}
