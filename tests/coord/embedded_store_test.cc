// The embedded backend beyond the shared contract: what a failed fsync
// does, group commit, snapshots taken while writes go on, log pruning,
// stream resume across restarts and retention, sessions across restarts,
// and shutdown.

#include "server/coord/embedded/embedded_store.h"

#include <atomic>
#include <catch2/catch.hpp>
#include <filesystem>
#include <map>
#include <random>
#include <thread>

#include "common/log.h"
#include "server/coord/coord_store.h"
#include "tests/coord/backends.h"
#include "tests/coord/fault_env.h"
#include "tests/support/process.h"

using namespace kiln;
using namespace kiln::coord;
using namespace kiln::test;
using namespace std::chrono_literals;

namespace {

std::unique_ptr<CoordStore> Open(const std::string& dir, CoordOptions o = {},
                                 embedded::FileEnv* env = nullptr) {
  log::SetLevel(log::Level::kError);
  auto s = OpenEmbeddedStore(o, dir, env);
  INFO(s.status().ToString());
  REQUIRE(s.ok());
  return std::move(*s);
}

// Path -> (data, stat) for the whole tree.
std::map<std::string, std::pair<std::string, Stat>> Dump(CoordStore& s) {
  std::map<std::string, std::pair<std::string, Stat>> out;
  std::vector<std::string> todo{"/"};
  while (!todo.empty()) {
    std::string p = todo.back();
    todo.pop_back();
    auto g = Must(s.Get(p));
    out[p] = {g.data, g.stat};
    for (const auto& c : Must(s.Children(p)).children)
      todo.push_back(p == "/" ? "/" + c : p + "/" + c);
  }
  return out;
}

int Count(const std::string& dir, const std::string& prefix) {
  int n = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir))
    n += e.path().filename().string().rfind(prefix, 0) == 0;
  return n;
}

}  // namespace

TEST_CASE("after a failed fsync the store refuses every write but keeps serving reads") {
  TempDir t;
  FaultEnv env;
  auto s = Open(t.Sub("c"), {}, &env);
  Must(s->Create("/ok", "1"));
  env.fail_sync = true;
  auto failed = s->Create("/lost", "2");
  CHECK(failed.status().code() == Code::kIoError);
  CHECK(failed.status().message().find("injected failure") != std::string::npos);
  env.fail_sync = false;  // the disk "recovers": the store must not trust it
  auto refused = s->Set("/ok", "3");
  CHECK(refused.status().code() == Code::kIoError);
  CHECK(refused.status().message().find("refuses writes until kiln restarts") != std::string::npos);
  CHECK(s->CreateSession(1s).status().code() == Code::kIoError);
  CHECK(Must(s->Get("/ok")).data == "1");  // reads still work
  CHECK(!Must(s->Exists("/lost")).has_value());
  CHECK(s->Describe()["state"] == "failed");

  s.reset();
  auto again = Open(t.Sub("c"));
  CHECK(Must(again->Get("/ok")).data == "1");
  Must(again->Set("/ok", "4"));
}

TEST_CASE("a failed append also stops writes") {
  TempDir t;
  FaultEnv env;
  auto s = Open(t.Sub("c"), {}, &env);
  env.fail_append = true;
  CHECK(s->Create("/x").status().code() == Code::kIoError);
  env.fail_append = false;
  CHECK(s->Create("/y").status().code() == Code::kIoError);
}

TEST_CASE("group commit: many updates share one fsync") {
  TempDir t;
  FaultEnv env;
  env.sync_delay_ms = 20;  // a slow disk makes the batching visible
  auto s = Open(t.Sub("c"), {}, &env);
  Must(s->Create("/g"));
  int base = env.syncs;
  std::atomic<int> done{0};
  constexpr int kWrites = 400;
  for (int i = 0; i < kWrites; ++i)
    s->CreateAsync(CreateOp{.path = "/g/" + std::to_string(i)}, [&](Result<CreateResult> r) {
      CHECK(r.ok());
      ++done;
    });
  REQUIRE(WaitUntil([&] { return done == kWrites; }, 60s));
  int syncs = env.syncs - base;
  INFO("fsyncs: " << syncs);
  CHECK(syncs < kWrites / 10);
  CHECK(Must(s->Children("/g")).children.size() == kWrites);
  auto log = s->Describe()["log"];
  CHECK(log["transactions_per_fsync"].get<double>() > 2.0);
}

TEST_CASE("snapshots taken during writes give back exactly the same tree") {
  TempDir t;
  CoordOptions o;
  o.segment_bytes = 8192;
  o.retain_changes = 50;  // so that old segments can go
  std::map<std::string, std::pair<std::string, Stat>> before;
  {
    auto s = Open(t.Sub("c"), o);
    MustOk(s->EnsurePath("/w"));
    auto sess = Must(s->CreateSession(60s));
    std::atomic<bool> stop{false};
    std::thread churn([&] {
      std::mt19937 rng(5);
      for (int i = 0; !stop; ++i) {
        std::string p = "/w/" + std::to_string(rng() % 40);
        switch (rng() % 4) {
          case 0: (void)s->Create(p, std::string(rng() % 200, 'c')); break;
          case 1: (void)s->Set(p, std::to_string(i)); break;
          case 2: (void)s->Delete(p); break;
          default:
            (void)s->Create(CreateOp{.path = p + "e", .ephemeral = true, .session = sess.id});
        }
      }
    });
    REQUIRE(WaitUntil([&] { return s->Describe()["snapshot"]["taken"].get<int>() >= 3; }, 60s));
    stop = true;
    churn.join();
    before = Dump(*s);
    // Old segments and snapshots are removed once newer ones hold their data.
    REQUIRE(WaitUntil([&] { return Count(t.Sub("c"), "snapshot.") == 1; }));
    CHECK(Count(t.Sub("c"), "log.") < s->Describe()["snapshot"]["taken"].get<int>() + 2);
  }
  auto s = Open(t.Sub("c"), o);
  CHECK(s->Describe()["recovery"]["snapshot_zxid"].get<int64_t>() > 0);
  auto after = Dump(*s);
  CHECK(after.size() == before.size());
  CHECK(after == before);
}

TEST_CASE("streams resume from the retained log across a restart, older resumes are compacted") {
  TempDir t;
  CoordOptions o;
  o.retain_changes = 20;
  {
    auto s = Open(t.Sub("c"), o);
    Must(s->Create("/r"));
    for (int i = 0; i < 30; ++i) Must(s->Set("/r", std::to_string(i)));
  }
  auto s = Open(t.Sub("c"), o);
  Zxid oldest = s->OldestResumableZxid();
  CHECK(oldest > 0);
  std::vector<ChangePtr> seen;
  auto stream =
      s->OpenStream(StreamOptions{.path = "/r", .since = oldest},
                    StreamHandlers{[&](const ChangePtr& c) { seen.push_back(c); }, nullptr});
  REQUIRE(stream.ok());
  CHECK(seen.size() == 20);  // delivered during OpenStream
  CHECK(seen.back()->zxid == s->LastZxid());
  CHECK(*seen.back()->data == "29");
  for (size_t i = 1; i < seen.size(); ++i) CHECK(seen[i]->zxid == seen[i - 1]->zxid + 1);

  auto old = s->OpenStream(StreamOptions{.path = "/r", .since = oldest - 1},
                           StreamHandlers{[](const ChangePtr&) {}, nullptr});
  CHECK(old.status().code() == Code::kCompacted);
  CHECK(old.status().message().find("re-read") != std::string::npos);
  auto ahead = s->OpenStream(StreamOptions{.path = "/r", .since = s->LastZxid() + 5},
                             StreamHandlers{[](const ChangePtr&) {}, nullptr});
  CHECK(ahead.status().code() == Code::kInvalidArgument);

  // The live part continues with no gap.
  Must(s->Set("/r", "live"));
  CHECK(seen.size() == 21);
  CHECK(*seen.back()->data == "live");
}

TEST_CASE("a multi's changes reach a stream together, the last one marked") {
  TempDir t;
  auto s = Open(t.Sub("c"));
  std::vector<ChangePtr> seen;
  auto stream =
      Must(s->OpenStream(StreamOptions{.path = "/"},
                         StreamHandlers{[&](const ChangePtr& c) { seen.push_back(c); }, nullptr}));
  Must(s->Multi(
      {CreateOp{.path = "/a"}, CreateOp{.path = "/a/b"}, SetOp{.path = "/a", .data = "x"}}));
  REQUIRE(seen.size() == 3);
  CHECK(seen[0]->zxid == seen[2]->zxid);
  CHECK(!seen[0]->txn_end);
  CHECK(!seen[1]->txn_end);
  CHECK(seen[2]->txn_end);
}

TEST_CASE("sessions outlive a restart, then expire without heartbeats") {
  TempDir t;
  CoordOptions o;
  SessionId id;
  {
    auto s = Open(t.Sub("c"), o);
    id = Must(s->CreateSession(600ms)).id;
    Must(s->Create(CreateOp{.path = "/mine", .ephemeral = true, .session = id}));
  }
  auto s = Open(t.Sub("c"), o);
  // Back with a fresh timeout: still alive right after the restart.
  MustOk(s->Heartbeat(id));
  CHECK(Must(s->Exists("/mine")).has_value());
  REQUIRE(WaitUntil([&] { return !Must(s->Exists("/mine")).has_value(); }, 30s));
  CHECK(s->Heartbeat(id).code() == Code::kSessionExpired);
}

TEST_CASE("closing the store answers watchers and streams, and refuses new calls") {
  TempDir t;
  auto s = Open(t.Sub("c"));
  Must(s->Create("/x"));
  std::vector<WatchEvent> events;
  Must(s->Get("/x", [&](const WatchEvent& e) { events.push_back(e); }));
  Status ended;
  auto stream =
      Must(s->OpenStream(StreamOptions{.path = "/"},
                         StreamHandlers{[](const ChangePtr&) {}, [&](Status st) { ended = st; }}));
  s.reset();
  REQUIRE(events.size() == 1);
  CHECK(events[0].type == EventType::kNotWatching);
  CHECK(ended.code() == Code::kUnavailable);
  stream.reset();  // after the store: must be harmless
}

TEST_CASE("synchronous writes from a store callback fail instead of deadlocking") {
  TempDir t;
  auto s = Open(t.Sub("c"));
  Must(s->Create("/cb"));
  Status write_status;
  std::string read_data;
  std::atomic<bool> done{false};
  Must(s->Get("/cb", [&](const WatchEvent&) {
    write_status = s->Set("/cb", "nested").status();
    read_data = Must(s->Get("/cb")).data;  // embedded reads never wait
    done = true;
  }));
  Must(s->Set("/cb", "outer"));
  REQUIRE(WaitUntil([&] { return done.load(); }));
  CHECK(write_status.code() == Code::kFailedPrecondition);
  // The watcher runs before readers can see the update, so it reads it too.
  CHECK(read_data == "outer");
}

TEST_CASE("prepared results match the tree after apply, over random operations") {
  TempDir t;
  auto s = Open(t.Sub("c"));
  std::mt19937 rng(77);
  auto sess = Must(s->CreateSession(60s));
  std::vector<std::string> paths{"/a", "/a/b", "/a/c", "/d", "/d/e", "/d/e/f"};
  int applied = 0;
  for (int i = 0; i < 600; ++i) {
    const std::string& p = paths[rng() % paths.size()];
    switch (rng() % 5) {
      case 0: {
        auto r = s->Create(CreateOp{.path = p,
                                    .data = "c",
                                    .ephemeral = rng() % 4 == 0,
                                    .sequential = rng() % 3 == 0,
                                    .session = sess.id});
        if (r.ok()) {
          CHECK(Must(s->Get(r->path)).stat == r->stat);
          ++applied;
        }
        break;
      }
      case 1: {
        auto r =
            s->Set(p, std::string(rng() % 10, 's'), rng() % 2 ? -1 : static_cast<int>(rng() % 3));
        if (r.ok()) {
          CHECK(Must(s->Get(p)).stat == r->stat);
          ++applied;
        }
        break;
      }
      case 2:
        if (s->Delete(p, rng() % 2 ? -1 : 0).ok()) ++applied;
        break;
      case 3: {
        auto r = s->Multi({CreateOp{.path = p + "/m"}, SetOp{.path = p, .data = "m"}});
        if (r.ok()) {
          CHECK(Must(s->Get(p)).stat == r->results[1].stat);
          CHECK(Must(s->Get(p + "/m")).stat.czxid == r->zxid);
          ++applied;
        }
        break;
      }
      default: {
        // Children counts agree with stats.
        auto g = s->Get(p);
        if (g.ok())
          CHECK(static_cast<size_t>(g->stat.num_children) == Must(s->Children(p)).children.size());
      }
    }
  }
  CHECK(applied > 50);
}
