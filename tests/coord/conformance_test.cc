// The CoordStore contract, run against both backends (see backends.h): the
// embedded store and a real ZooKeeper server. Whatever passes here can be
// relied on by kiln whichever backend an operator picks.

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "server/coord/coord_store.h"
#include "tests/coord/backends.h"
#include "tests/support/process.h"

using namespace kiln;
using namespace kiln::coord;
using namespace kiln::test;
using namespace std::chrono_literals;

namespace {

// Collects watch events and stream changes from store threads.
struct Events {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<WatchEvent> watch;
  std::vector<ChangePtr> changes;

  Watcher Watch() {
    return [this](const WatchEvent& e) {
      std::lock_guard lock(mu);
      watch.push_back(e);
      cv.notify_all();
    };
  }
  StreamHandlers Stream() {
    StreamHandlers h;
    h.on_change = [this](const ChangePtr& c) {
      std::lock_guard lock(mu);
      changes.push_back(c);
      cv.notify_all();
    };
    return h;
  }
  size_t WatchCount() {
    std::lock_guard lock(mu);
    return watch.size();
  }
  bool WaitChanges(size_t n) {
    std::unique_lock lock(mu);
    return cv.wait_for(lock, 20s, [&] { return changes.size() >= n; });
  }
  bool WaitWatches(size_t n) {
    std::unique_lock lock(mu);
    return cv.wait_for(lock, 20s, [&] { return watch.size() >= n; });
  }
};

}  // namespace

CONFORMANCE_TEST("create sets the new znode's stat and its parent's") {
  auto& s = b.store();
  auto parent = Must(s.Create("/app", "p"));
  CHECK(parent.path == "/app");
  auto child = Must(s.Create("/app/x", "hello"));
  auto got = Must(s.Get("/app/x"));
  CHECK(got.data == "hello");
  CHECK(got.stat.czxid == child.stat.czxid);
  CHECK(got.stat.czxid == got.stat.mzxid);
  CHECK(got.stat.pzxid == got.stat.czxid);
  CHECK(got.stat.czxid > parent.stat.czxid);
  CHECK(got.stat.version == 0);
  CHECK(got.stat.cversion == 0);
  CHECK(got.stat.data_length == 5);
  CHECK(got.stat.num_children == 0);
  CHECK(got.stat.ephemeral_owner == 0);
  CHECK(got.stat.ctime_ms > 0);
  CHECK(got.stat == child.stat);

  auto p = Must(s.Get("/app"));
  CHECK(p.stat.num_children == 1);
  CHECK(p.stat.cversion == 1);
  CHECK(p.stat.pzxid == child.stat.czxid);
  CHECK(p.stat.version == 0);  // a child does not change the parent's data

  auto empty = Must(s.Create("/app/empty"));
  CHECK(Must(s.Get("/app/empty")).data.empty());
  CHECK(empty.stat.data_length == 0);
}

CONFORMANCE_TEST("create refuses missing parents, existing znodes and malformed paths") {
  auto& s = b.store();
  auto missing = s.Create("/nope/child");
  CHECK(missing.status().code() == Code::kNotFound);
  CHECK(missing.status().message().find("/nope") != std::string::npos);

  Must(s.Create("/a"));
  auto again = s.Create("/a");
  CHECK(again.status().code() == Code::kAlreadyExists);
  CHECK(again.status().message().find("/a") != std::string::npos);

  for (const char* bad : {"", "a", "/a/", "//a", "/a//b", "/a/./b", "/a/../b", "/a/\x01"}) {
    INFO("path " << bad);
    auto r = s.Create(bad);
    CHECK(r.status().code() == Code::kInvalidArgument);
    CHECK(r.status().message().find("malformed path") != std::string::npos);
  }
  CHECK(s.Get("relative").status().code() == Code::kInvalidArgument);
  CHECK(s.Create("/").status().code() == Code::kAlreadyExists);
}

CONFORMANCE_TEST("data up to 1 MiB is stored; larger data is refused") {
  auto& s = b.store();
  std::string big(kMaxDataSize, 'x');
  big[0] = 'a';
  big.back() = 'z';
  Must(s.Create("/big", big));
  CHECK(Must(s.Get("/big")).data == big);
  auto too = s.Create("/toobig", std::string(kMaxDataSize + 1, 'y'));
  CHECK(too.status().code() == Code::kTooLarge);
  CHECK(s.Set("/big", std::string(kMaxDataSize + 1, 'y')).status().code() == Code::kTooLarge);
  CHECK(Must(s.Get("/big")).data == big);
  CHECK(!Must(s.Exists("/toobig")).has_value());
  // Binary data round-trips.
  std::string bin("\0\x01\xff\n", 4);
  Must(s.Create("/bin", bin));
  CHECK(Must(s.Get("/bin")).data == bin);
}

CONFORMANCE_TEST("set and delete check the expected version") {
  auto& s = b.store();
  auto c = Must(s.Create("/v", "0"));
  auto s1 = Must(s.Set("/v", "1", 0));
  CHECK(s1.stat.version == 1);
  CHECK(s1.stat.mzxid > c.stat.mzxid);
  CHECK(s1.stat.czxid == c.stat.czxid);
  auto bad = s.Set("/v", "x", 0);
  CHECK(bad.status().code() == Code::kBadVersion);
  CHECK(Must(s.Get("/v")).data == "1");
  auto any = Must(s.Set("/v", "2"));  // -1: any version
  CHECK(any.stat.version == 2);
  CHECK(s.Set("/missing", "x").status().code() == Code::kNotFound);

  CHECK(s.Delete("/v", 1).code() == Code::kBadVersion);
  CHECK(Must(s.Exists("/v")).has_value());
  MustOk(s.Delete("/v", 2));
  CHECK(!Must(s.Exists("/v")).has_value());
  CHECK(s.Delete("/v").code() == Code::kNotFound);
  CHECK(s.Get("/v").status().code() == Code::kNotFound);
}

CONFORMANCE_TEST("delete refuses znodes with children and updates the parent") {
  auto& s = b.store();
  Must(s.Create("/p"));
  Must(s.Create("/p/c"));
  auto st = s.Delete("/p");
  CHECK(st.code() == Code::kNotEmpty);
  auto before = Must(s.Get("/p")).stat;
  MustOk(s.Delete("/p/c"));
  auto after = Must(s.Get("/p")).stat;
  CHECK(after.num_children == 0);
  CHECK(after.cversion == before.cversion + 1);
  CHECK(after.pzxid > before.pzxid);
  MustOk(s.Delete("/p"));
}

CONFORMANCE_TEST("children are listed by name, sorted") {
  auto& s = b.store();
  Must(s.Create("/kids"));
  for (const char* n : {"b", "a", "c10", "c2"}) Must(s.Create(std::string("/kids/") + n));
  auto kids = Must(s.Children("/kids"));
  CHECK(kids.children == std::vector<std::string>{"a", "b", "c10", "c2"});
  CHECK(kids.stat.num_children == 4);
  CHECK(Must(s.Children("/kids/a")).children.empty());
  CHECK(s.Children("/none").status().code() == Code::kNotFound);
  auto root = Must(s.Children("/"));
  CHECK(std::find(root.children.begin(), root.children.end(), "kids") != root.children.end());
}

CONFORMANCE_TEST("sequential znodes count with the parent's cversion") {
  auto& s = b.store();
  Must(s.Create("/q"));
  auto a = Must(s.Create(CreateOp{.path = "/q/item-", .sequential = true}));
  auto b2 = Must(s.Create(CreateOp{.path = "/q/item-", .sequential = true}));
  CHECK(a.path == "/q/item-0000000000");
  CHECK(b2.path == "/q/item-0000000001");
  MustOk(s.Delete(a.path));  // counts creates: a delete neither lowers nor raises it
  CHECK(Must(s.Get("/q")).stat.cversion == 3);
  auto c = Must(s.Create(CreateOp{.path = "/q/", .sequential = true}));
  CHECK(c.path == "/q/0000000002");
  CHECK(Must(s.Exists("/q/0000000002")).has_value());
  Must(s.Create("/q/plain"));  // any create counts
  CHECK(Must(s.Create(CreateOp{.path = "/q/x", .sequential = true})).path == "/q/x0000000004");
}

CONFORMANCE_TEST("ephemeral znodes belong to a session and vanish when it closes") {
  auto& s = b.store();
  auto session = Must(s.CreateSession(10s));
  CHECK(session.id != 0);
  Must(s.Create("/live"));
  auto e = Must(s.Create(
      CreateOp{.path = "/live/me", .data = "x", .ephemeral = true, .session = session.id}));
  CHECK(e.stat.ephemeral_owner == session.id);
  CHECK(Must(s.Get("/live/me")).stat.ephemeral_owner == session.id);

  auto child = s.Create("/live/me/child");
  CHECK(child.status().code() == Code::kNoChildrenForEphemerals);
  CHECK(child.status().message().find("/live/me") != std::string::npos);

  auto no_session = s.Create(CreateOp{.path = "/live/x", .ephemeral = true});
  CHECK(no_session.status().code() == Code::kInvalidArgument);

  MustOk(s.Heartbeat(session.id));
  MustOk(s.CloseSession(session.id));
  CHECK(!Must(s.Exists("/live/me")).has_value());
  CHECK(s.Heartbeat(session.id).code() == Code::kSessionExpired);
  auto late = s.Create(CreateOp{.path = "/live/late", .ephemeral = true, .session = session.id});
  CHECK(late.status().code() == Code::kSessionExpired);
}

CONFORMANCE_TEST("unknown sessions are refused") {
  auto& s = b.store();
  CHECK(s.Heartbeat(123456789).code() == Code::kSessionExpired);
  CHECK(s.CloseSession(123456789).code() == Code::kSessionExpired);
  auto r = s.Create(CreateOp{.path = "/e", .ephemeral = true, .session = 123456789});
  CHECK(r.status().code() == Code::kSessionExpired);
}

CONFORMANCE_TEST("a session without heartbeats expires and takes its ephemerals along") {
  auto& s = b.store();
  auto kept = Must(s.CreateSession(1500ms));
  auto dropped = Must(s.CreateSession(400ms));
  Must(s.Create(CreateOp{.path = "/kept", .ephemeral = true, .session = kept.id}));
  Must(s.Create(CreateOp{.path = "/dropped", .ephemeral = true, .session = dropped.id}));
  Events ev;
  CHECK(Must(s.Exists("/dropped", ev.Watch())).has_value());
  // Heartbeat one session often while the other one starves.
  bool gone = WaitUntil(
      [&] {
        (void)s.Heartbeat(kept.id);
        return !Must(s.Exists("/dropped")).has_value();
      },
      30s);
  CHECK(gone);
  REQUIRE(ev.WaitWatches(1));
  CHECK(ev.watch[0].type == EventType::kDeleted);
  CHECK(ev.watch[0].path == "/dropped");
  CHECK(Must(s.Exists("/kept")).has_value());
  CHECK(s.Heartbeat(dropped.id).code() == Code::kSessionExpired);
  MustOk(s.CloseSession(kept.id));
}

CONFORMANCE_TEST("multi applies all operations as one update, or none") {
  auto& s = b.store();
  Must(s.Create("/m"));
  Must(s.Create("/m/a", "1"));
  auto ok = Must(s.Multi(
      {CreateOp{.path = "/m/b", .data = "2"}, SetOp{.path = "/m/a", .data = "3", .version = 0},
       CheckOp{.path = "/m", .version = 0}, CreateOp{.path = "/m/seq-", .sequential = true}}));
  REQUIRE(ok.results.size() == 4);
  CHECK(ok.results[0].path == "/m/b");
  CHECK(ok.results[1].stat.version == 1);
  CHECK(ok.results[3].path == "/m/seq-0000000002");
  // One update: one zxid for every operation.
  auto b_stat = Must(s.Get("/m/b")).stat;
  auto a_stat = Must(s.Get("/m/a")).stat;
  CHECK(b_stat.czxid == a_stat.mzxid);
  CHECK(ok.zxid == b_stat.czxid);

  auto bad = s.Multi({CreateOp{.path = "/m/c"}, SetOp{.path = "/m/a", .data = "x", .version = 0},
                      DeleteOp{.path = "/m/b"}});
  CHECK(bad.status().code() == Code::kBadVersion);
  CHECK(bad.status().message().find("op 1") != std::string::npos);
  CHECK(!Must(s.Exists("/m/c")).has_value());
  CHECK(Must(s.Get("/m/a")).data == "3");
  CHECK(Must(s.Exists("/m/b")).has_value());

  auto check = s.Multi({CheckOp{.path = "/m/a", .version = 7}});
  CHECK(check.status().code() == Code::kBadVersion);
  auto missing = s.Multi({DeleteOp{.path = "/m/b"}, DeleteOp{.path = "/m/none"}});
  CHECK(missing.status().code() == Code::kNotFound);
  CHECK(Must(s.Exists("/m/b")).has_value());
  // Later operations see earlier ones.
  Must(s.Multi({CreateOp{.path = "/m/d"}, CreateOp{.path = "/m/d/e"}, DeleteOp{.path = "/m/d/e"},
                DeleteOp{.path = "/m/d"}}));
  CHECK(!Must(s.Exists("/m/d")).has_value());
  CHECK(Must(s.Multi({})).results.empty());
}

CONFORMANCE_TEST("one-shot data watches fire once, on set and on delete") {
  auto& s = b.store();
  Must(s.Create("/w", "0"));
  Events ev;
  Must(s.Get("/w", ev.Watch()));
  Must(s.Set("/w", "1"));
  // The watcher has run by the time the write that fired it is answered.
  CHECK(ev.WatchCount() == 1);
  Must(s.Set("/w", "2"));
  MustOk(s.Delete("/w"));
  Must(s.Create("/w"));
  REQUIRE(ev.WaitWatches(1));
  CHECK(ev.WatchCount() == 1);  // one-shot
  CHECK(ev.watch[0].type == EventType::kChanged);
  CHECK(ev.watch[0].path == "/w");

  Events del;
  Must(s.Get("/w", del.Watch()));
  MustOk(s.Delete("/w"));
  REQUIRE(del.WaitWatches(1));
  CHECK(del.watch[0].type == EventType::kDeleted);
}

CONFORMANCE_TEST("exists watches fire on create; child watches on child changes") {
  auto& s = b.store();
  Events created;
  CHECK(!Must(s.Exists("/later", created.Watch())).has_value());
  Must(s.Create("/later"));
  REQUIRE(created.WaitWatches(1));
  CHECK(created.watch[0].type == EventType::kCreated);
  CHECK(created.watch[0].path == "/later");

  Events kids;
  Must(s.Children("/later", kids.Watch()));
  Must(s.Set("/later", "data changes do not fire child watches"));
  Must(s.Create("/later/k"));
  REQUIRE(kids.WaitWatches(1));
  CHECK(kids.watch[0].type == EventType::kChildren);
  CHECK(kids.watch[0].path == "/later");

  Events gone;
  Must(s.Children("/later/k", gone.Watch()));
  MustOk(s.Delete("/later/k"));
  REQUIRE(gone.WaitWatches(1));
  CHECK(gone.watch[0].type == EventType::kDeleted);

  // A failed read registers nothing.
  Events none;
  CHECK(s.Get("/nothing", none.Watch()).status().code() == Code::kNotFound);
  Must(s.Create("/nothing"));
  Must(s.Set("/nothing", "x"));
  CHECK(none.WatchCount() == 0);
}

// Each write waits for its change before the next: ZooKeeper's one-shot
// watches (under the zookeeper backend's streams) cannot see changes that
// follow each other faster than a watch is re-armed. The embedded backend
// loses none (embedded_store_test.cc checks that).
CONFORMANCE_TEST("a watch stream delivers every later change under its path, in order") {
  auto& s = b.store();
  Must(s.Create("/s"));
  Must(s.Create("/other"));
  Must(s.Create("/s/pre", "existing"));
  Events ev;
  auto stream = Must(s.OpenStream(StreamOptions{.path = "/s", .recursive = true}, ev.Stream()));
  Must(s.Create("/s/a", "1"));
  REQUIRE(ev.WaitChanges(1));
  Must(s.Create("/other/x"));  // out of scope
  Must(s.Set("/s/a", "2"));
  REQUIRE(ev.WaitChanges(2));
  Must(s.Create("/s/a/deep", "d"));
  REQUIRE(ev.WaitChanges(3));
  MustOk(s.Delete("/s/a/deep"));
  REQUIRE(ev.WaitChanges(4));
  Must(s.Set("/s/pre", "changed"));
  REQUIRE(ev.WaitChanges(5));
  std::lock_guard lock(ev.mu);
  REQUIRE(ev.changes.size() == 5);
  CHECK(ev.changes[0]->type == EventType::kCreated);
  CHECK(ev.changes[0]->path == "/s/a");
  CHECK(*ev.changes[0]->data == "1");
  CHECK(ev.changes[1]->type == EventType::kChanged);
  CHECK(*ev.changes[1]->data == "2");
  CHECK(ev.changes[1]->version == 1);
  CHECK(ev.changes[2]->path == "/s/a/deep");
  CHECK(ev.changes[2]->type == EventType::kCreated);
  CHECK(ev.changes[3]->type == EventType::kDeleted);
  CHECK(ev.changes[3]->path == "/s/a/deep");
  CHECK(ev.changes[4]->path == "/s/pre");
  CHECK(*ev.changes[4]->data == "changed");
  for (size_t i = 1; i < ev.changes.size(); ++i)
    CHECK(ev.changes[i]->zxid >= ev.changes[i - 1]->zxid);
  CHECK(ev.changes[4]->zxid > ev.changes[0]->zxid);
}

CONFORMANCE_TEST("a non-recursive stream sees the znode and its direct children only") {
  auto& s = b.store();
  Must(s.Create("/f"));
  Events ev;
  auto stream = Must(s.OpenStream(StreamOptions{.path = "/f", .recursive = false}, ev.Stream()));
  Must(s.Create("/f/child", "c"));
  REQUIRE(ev.WaitChanges(1));
  Must(s.Create("/f/child/grandchild"));
  Must(s.Set("/f", "self"));
  REQUIRE(ev.WaitChanges(2));
  std::lock_guard lock(ev.mu);
  REQUIRE(ev.changes.size() == 2);
  CHECK(ev.changes[0]->path == "/f/child");
  CHECK(ev.changes[1]->path == "/f");
}

CONFORMANCE_TEST("a stream stops delivering once it is destroyed") {
  auto& s = b.store();
  Must(s.Create("/gone"));
  Events ev;
  auto stream = Must(s.OpenStream(StreamOptions{.path = "/gone"}, ev.Stream()));
  Must(s.Set("/gone", "1"));
  REQUIRE(ev.WaitChanges(1));
  stream.reset();
  Must(s.Set("/gone", "2"));
  Must(s.Create("/gone/x"));
  Must(s.Get("/gone"));  // a round trip after the writes
  std::lock_guard lock(ev.mu);
  CHECK(ev.changes.size() == 1);
}

// What both backends promise a resume: every znode changed after `since`
// is reported, oldest first. (The embedded store replays each change from
// its log; ZooKeeper catches up from the znodes' current state, so a znode
// changed twice is reported once, with its latest data. Here each znode
// changes once after since, so both agree.)
CONFORMANCE_TEST("a stream resumed from a zxid reports what changed after it, in order") {
  auto& s = b.store();
  Must(s.Create("/r"));
  Must(s.Create("/r/old", "untouched"));
  auto a = Must(s.Create("/r/a", "1"));
  Zxid since = a.zxid;
  auto set = Must(s.Set("/r/a", "2"));
  auto made = Must(s.Create("/r/b", "new"));
  Must(s.Create("/elsewhere"));
  Events ev;
  auto stream = Must(s.OpenStream(StreamOptions{.path = "/r", .since = since}, ev.Stream()));
  REQUIRE(ev.WaitChanges(2));
  Must(s.Set("/r/old", "live"));
  REQUIRE(ev.WaitChanges(3));
  std::lock_guard lock(ev.mu);
  REQUIRE(ev.changes.size() == 3);
  CHECK(ev.changes[0]->type == EventType::kChanged);
  CHECK(ev.changes[0]->path == "/r/a");
  CHECK(*ev.changes[0]->data == "2");
  CHECK(ev.changes[0]->zxid == set.zxid);
  CHECK(ev.changes[1]->type == EventType::kCreated);
  CHECK(ev.changes[1]->path == "/r/b");
  CHECK(*ev.changes[1]->data == "new");
  CHECK(ev.changes[1]->zxid == made.zxid);
  CHECK(ev.changes[2]->path == "/r/old");
  CHECK(*ev.changes[2]->data == "live");
  CHECK(stream->position() >= ev.changes[2]->zxid);
}

CONFORMANCE_TEST("zxids grow with every update and reads report them") {
  auto& s = b.store();
  Zxid before = s.LastZxid();
  auto c = Must(s.Create("/z"));
  CHECK(c.zxid > before);
  auto set = Must(s.Set("/z", "1"));
  CHECK(set.zxid > c.zxid);
  CHECK(set.stat.mzxid == set.zxid);
  CHECK(Must(s.Get("/z")).zxid >= set.zxid);
  CHECK(s.LastZxid() >= set.zxid);
}

CONFORMANCE_TEST("EnsurePath creates missing ancestors and keeps existing ones") {
  auto& s = b.store();
  Must(s.Create("/e", "keep"));
  MustOk(s.EnsurePath("/e/f/g"));
  CHECK(Must(s.Get("/e")).data == "keep");
  CHECK(Must(s.Exists("/e/f/g")).has_value());
  MustOk(s.EnsurePath("/e/f/g"));
  CHECK(s.EnsurePath("e/f").code() == Code::kInvalidArgument);
}

CONFORMANCE_TEST("concurrent asynchronous writers all get exactly one completion") {
  auto& s = b.store();
  Must(s.Create("/c"));
  constexpr int kThreads = 4, kEach = 100;
  std::atomic<int> ok{0}, failed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        s.CreateAsync(CreateOp{.path = "/c/" + std::to_string(t) + "-" + std::to_string(i)},
                      [&](Result<CreateResult> r) { (r.ok() ? ok : failed)++; });
        // Every other one collides with an earlier create.
        s.CreateAsync(CreateOp{.path = "/c/" + std::to_string(t) + "-" + std::to_string(i / 2)},
                      [&](Result<CreateResult> r) { (r.ok() ? ok : failed)++; });
      }
    });
  }
  for (auto& t : threads) t.join();
  REQUIRE(WaitUntil([&] { return ok + failed == 2 * kThreads * kEach; }, 60s));
  CHECK(ok == kThreads * kEach);
  CHECK(Must(s.Children("/c")).children.size() == size_t(kThreads * kEach));
}

CONFORMANCE_TEST("state survives closing and reopening the store") {
  auto& s = b.store();
  Must(s.Create("/keep", "v1"));
  Must(s.Set("/keep", "v2"));
  auto zxid = s.LastZxid();
  auto& again = b.Reopen();
  auto got = Must(again.Get("/keep"));
  CHECK(got.data == "v2");
  CHECK(got.stat.version == 1);
  CHECK(again.LastZxid() >= zxid);
}
