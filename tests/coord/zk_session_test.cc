// The zookeeper backend outlives its main session: when ZooKeeper expires
// it, the store opens a new one, serves requests again, and moves its watch
// streams to the new session, where they resume from the current state
// (zk_stream.h). Runs in the conformance suite's zookeeper process, on its
// shared server.
//
// The expiry is forced the way ZooKeeper's own tests do it: a second client
// attaches to the store's session (ZooKeeper derives a session's password
// from its id) and closes it, so the server ends the session and the
// store's client hears "expired" when it reconnects.

#include <zookeeper/zookeeper.h>

#include <array>
#include <atomic>
#include <catch2/catch.hpp>
#include <condition_variable>
#include <mutex>
#include <vector>

#include "server/coord/coord_store.h"
#include "tests/coord/backends.h"
#include "tests/support/process.h"

using namespace kiln;
using namespace kiln::coord;
using namespace kiln::test;
using namespace std::chrono_literals;

namespace {

// ZooKeeperServer.generatePasswd: java.util.Random(id ^ 0xB3415C00)
// .nextBytes(16).
std::array<char, 16> SessionPassword(int64_t session_id) {
  constexpr uint64_t kMult = 0x5DEECE66DULL, kMask = (1ULL << 48) - 1;
  uint64_t seed = (static_cast<uint64_t>(session_id ^ 0xB3415C00LL) ^ kMult) & kMask;
  auto next_int = [&] {
    seed = (seed * kMult + 0xB) & kMask;
    return static_cast<uint32_t>(seed >> 16);
  };
  std::array<char, 16> p{};
  for (size_t i = 0; i < p.size();) {
    uint32_t rnd = next_int();
    for (size_t n = std::min<size_t>(p.size() - i, 4); n-- > 0; rnd >>= 8)
      p[i++] = static_cast<char>(rnd & 0xff);
  }
  return p;
}

struct Connected {
  std::mutex mu;
  std::condition_variable cv;
  int state = 0;
};

void OnState(zhandle_t*, int type, int state, const char*, void* ctx) {
  if (type != ZOO_SESSION_EVENT) return;
  auto* c = static_cast<Connected*>(ctx);
  std::lock_guard lock(c->mu);
  c->state = state;
  c->cv.notify_all();
}

// Attaches to session `id` and closes it. Returns whether the attach
// worked (false once the session is gone already).
bool CloseSessionFromOutside(const std::string& hostport, int64_t id) {
  clientid_t cid{};
  cid.client_id = id;
  auto pw = SessionPassword(id);
  std::copy(pw.begin(), pw.end(), cid.passwd);
  Connected c;
  zhandle_t* zh = zookeeper_init(hostport.c_str(), OnState, 10000, &cid, &c, 0);
  REQUIRE(zh != nullptr);
  bool attached;
  {
    std::unique_lock lock(c.mu);
    c.cv.wait_for(lock, 10s, [&] {
      return c.state == ZOO_CONNECTED_STATE || c.state == ZOO_EXPIRED_SESSION_STATE ||
             c.state == ZOO_AUTH_FAILED_STATE;
    });
    attached = c.state == ZOO_CONNECTED_STATE && zoo_client_id(zh)->client_id == id;
  }
  zookeeper_close(zh);
  return attached;
}

struct Seen {
  std::mutex mu;
  std::vector<ChangePtr> changes;
  std::vector<Status> ends;

  bool Has(EventType type, const std::string& path, const std::string& data) {
    std::lock_guard lock(mu);
    for (const auto& c : changes)
      if (c->type == type && c->path == path && c->data && *c->data == data) return true;
    return false;
  }
};

}  // namespace

TEST_CASE("zookeeper: the store replaces an expired main session and streams resume",
          "[zookeeper]") {
  if (!ZkAvailable()) {
    WARN("SKIP: " << ZkUnavailableReason());
    return;
  }
  // Declared before the store: its callbacks may run until it closes.
  Seen seen;
  std::atomic<int> not_watching{0};
  ZooKeeperBackend b;
  CoordStore& store = b.store();
  MustOk(store.Create("/a", "1").status());

  auto stream = Must(store.OpenStream(StreamOptions{.path = "/", .recursive = true, .since = -1},
                                      StreamHandlers{.on_change =
                                                         [&](const ChangePtr& c) {
                                                           std::lock_guard lock(seen.mu);
                                                           seen.changes.push_back(c);
                                                         },
                                                     .on_end =
                                                         [&](Status s) {
                                                           std::lock_guard lock(seen.mu);
                                                           seen.ends.push_back(s);
                                                         }}));
  // A one-shot watch armed on the old session hears that it is gone.
  Must(store.Get("/a", [&](const WatchEvent& ev) {
    if (ev.type == EventType::kNotWatching) ++not_watching;
  }));

  Json before = store.Describe();
  REQUIRE(before["state"] == "ok");
  int64_t old_session = before["session"].get<int64_t>();
  const std::string hostport = ZkTestServer::Shared().hostport();

  // Expire it (again, should the store's client win the race for the
  // session back before the close lands). The waits only detect a hang.
  auto replaced = [&] { return store.Describe()["sessions_replaced"].get<uint64_t>() >= 1; };
  bool expired = false, attached = false;
  for (int attempt = 0; attempt < 5 && !expired; ++attempt) {
    attached |= CloseSessionFromOutside(hostport, old_session);
    expired = WaitUntil(replaced, 30s);
  }
  CHECK(attached);
  REQUIRE(expired);
  REQUIRE(WaitUntil([&] { return store.Describe()["state"] == "ok"; }, 15s));
  Json after = store.Describe();
  CHECK(after["session"].get<int64_t>() != old_session);
  CHECK(WaitUntil([&] { return not_watching.load() == 1; }, 15s));

  // The store serves again, reads and writes.
  auto set = store.Set("/a", "2");
  INFO(set.status().ToString());
  REQUIRE(set.ok());
  CHECK(Must(store.Get("/a")).data == "2");
  MustOk(store.Create("/b", "new").status());
  auto kids = Must(store.Children("/"));
  CHECK(std::count(kids.children.begin(), kids.children.end(), "b") == 1);

  // The stream went on, on the new session: it reports the changes made
  // since, and did not end.
  CHECK(WaitUntil([&] { return seen.Has(EventType::kChanged, "/a", "2"); }, 15s));
  CHECK(WaitUntil([&] { return seen.Has(EventType::kCreated, "/b", "new"); }, 15s));
  {
    std::lock_guard lock(seen.mu);
    CHECK(seen.ends.empty());
  }
  // It resumed from where it was, not from the beginning: /a's creation,
  // before the stream opened, is not reported.
  CHECK_FALSE(seen.Has(EventType::kCreated, "/a", "1"));
  CHECK(stream->position() >= Must(store.Get("/b")).stat.czxid);

  // New streams and sessions work on the new main session too.
  auto s2 = Must(store.OpenStream(StreamOptions{.path = "/b", .recursive = false, .since = 0},
                                  StreamHandlers{.on_change = [](const ChangePtr&) {}}));
  auto session = Must(store.CreateSession(2s));
  MustOk(store.Create(CreateOp{.path = "/b/e", .ephemeral = true, .session = session.id}).status());
  MustOk(store.CloseSession(session.id));
  CHECK_FALSE(Must(store.Exists("/b/e")).has_value());
}
