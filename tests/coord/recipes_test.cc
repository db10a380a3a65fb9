// The recipes (server/coord/recipes/) against the embedded store: a lock's
// mutual exclusion and hand-over (unlock, session expiry, timeout), leader
// failover when the leader's session ends, and group members appearing and
// disappearing. Waits are on conditions, never on durations.

#include <atomic>
#include <catch2/catch.hpp>
#include <mutex>
#include <thread>

#include "common/log.h"
#include "server/coord/recipes/group.h"
#include "server/coord/recipes/leader.h"
#include "server/coord/recipes/lock.h"
#include "server/coord/recipes/sequence.h"
#include "tests/coord/backends.h"
#include "tests/support/process.h"

using namespace kiln;
using namespace kiln::coord;
using namespace kiln::coord::recipes;
using namespace kiln::test;
using namespace std::chrono_literals;

namespace {

size_t NumChildren(CoordStore& s, const std::string& path) {
  return Must(s.Children(path)).children.size();
}

// Keeps a session alive until stopped; then it expires by itself.
class Heartbeater {
 public:
  Heartbeater(CoordStore& s, SessionId id)
      : thread_([this, &s, id] {
          while (!stop_) {
            (void)s.Heartbeat(id);
            std::this_thread::sleep_for(20ms);
          }
        }) {}
  ~Heartbeater() { Stop(); }
  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }

 private:
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace

TEST_CASE("sequential names sort by their counter, strays last") {
  CHECK(SortBySequence({"b-0000000010", "x", "a-0000000002", "lock-0000000009"}) ==
        std::vector<std::string>{"a-0000000002", "lock-0000000009", "b-0000000010", "x"});
}

TEST_CASE("lock: mutual exclusion, hand-over on unlock, timeout withdraws") {
  log::SetLevel(log::Level::kError);
  EmbeddedBackend b;
  auto& s = b.store();
  auto a = Must(s.CreateSession(60s)).id;
  auto c = Must(s.CreateSession(60s)).id;
  Lock la(s, "/locks/images", a);
  Lock lb(s, "/locks/images", c);
  MustOk(la.Acquire(10s));
  CHECK(la.held());
  CHECK(la.Acquire(10s).code() == Code::kFailedPrecondition);

  std::atomic<bool> b_got{false};
  Status b_status;
  std::thread tb([&] {
    b_status = lb.Acquire(600s);
    b_got = true;
  });
  // B is queued behind A (its znode exists) but does not hold the lock.
  REQUIRE(WaitUntil([&] { return NumChildren(s, "/locks/images") == 2; }, 30s));
  CHECK(!b_got);

  // A third contender gives up after its timeout and leaves the queue.
  auto d = Must(s.CreateSession(60s)).id;
  Lock ld(s, "/locks/images", d);
  CHECK(ld.Acquire(1ms).code() == Code::kTimeout);
  CHECK(!ld.held());
  CHECK(NumChildren(s, "/locks/images") == 2);
  CHECK(!b_got);

  MustOk(la.Unlock());
  CHECK(!la.held());
  REQUIRE(WaitUntil([&] { return b_got.load(); }, 30s));
  tb.join();
  MustOk(b_status);
  CHECK(lb.held());
  CHECK(NumChildren(s, "/locks/images") == 1);
  CHECK(la.Unlock().code() == Code::kFailedPrecondition);
  MustOk(lb.Unlock());
  CHECK(NumChildren(s, "/locks/images") == 0);
}

TEST_CASE("lock: the holder's session expiring hands the lock to the next contender") {
  log::SetLevel(log::Level::kError);
  EmbeddedBackend b;
  auto& s = b.store();
  auto holder = Must(s.CreateSession(300ms)).id;
  Heartbeater beat(s, holder);
  auto waiter = Must(s.CreateSession(60s)).id;
  Lock la(s, "/locks/x", holder);
  Lock lb(s, "/locks/x", waiter);
  MustOk(la.Acquire(30s));

  std::atomic<bool> b_got{false};
  Status b_status;
  std::thread tb([&] {
    b_status = lb.Acquire(600s);
    b_got = true;
  });
  REQUIRE(WaitUntil([&] { return NumChildren(s, "/locks/x") == 2; }, 30s));
  CHECK(!b_got);
  beat.Stop();  // the holder dies without unlocking
  REQUIRE(WaitUntil([&] { return b_got.load(); }, 30s));
  tb.join();
  MustOk(b_status);
  CHECK(lb.held());
  CHECK(s.Heartbeat(holder).code() == Code::kSessionExpired);
  CHECK(Must(s.Children("/locks/x")).children ==
        std::vector<std::string>{std::string(lb.node().substr(lb.node().rfind('/') + 1))});
}

TEST_CASE("lock: a waiter whose own session ends gets kSessionExpired") {
  log::SetLevel(log::Level::kError);
  EmbeddedBackend b;
  auto& s = b.store();
  auto a = Must(s.CreateSession(60s)).id;
  auto w = Must(s.CreateSession(60s)).id;
  Lock la(s, "/l", a);
  Lock lw(s, "/l", w);
  MustOk(la.Acquire(10s));
  Status w_status;
  std::atomic<bool> done{false};
  std::thread tw([&] {
    w_status = lw.Acquire(600s);
    done = true;
  });
  REQUIRE(WaitUntil([&] { return NumChildren(s, "/l") == 2; }, 30s));
  // Closing the waiter's session removes its znode; the holder keeps the
  // lock, and the waiter learns why when the holder lets go.
  MustOk(s.CloseSession(w));
  CHECK(la.held());
  MustOk(la.Unlock());
  REQUIRE(WaitUntil([&] { return done.load(); }, 30s));
  tw.join();
  CHECK(w_status.code() == Code::kSessionExpired);
  CHECK(!lw.held());
}

TEST_CASE(
    "leader: the lowest candidate leads, and it fails over when the leader's session closes") {
  log::SetLevel(log::Level::kError);
  EmbeddedBackend b;
  auto& s = b.store();
  auto sa = Must(s.CreateSession(60s)).id;
  auto sb = Must(s.CreateSession(60s)).id;
  auto sc = Must(s.CreateSession(60s)).id;
  std::atomic<int> elected_a{0}, elected_b{0}, elected_c{0};
  std::mutex mu;
  std::optional<Status> lost_a;
  LeaderElection ea(s, "/kiln/leader", sa, "a",
                    {.on_elected = [&] { ++elected_a; },
                     .on_lost =
                         [&](Status st) {
                           std::lock_guard lock(mu);
                           lost_a = st;
                         }});
  LeaderElection eb(s, "/kiln/leader", sb, "b", {.on_elected = [&] { ++elected_b; }});
  LeaderElection ec(s, "/kiln/leader", sc, "c", {.on_elected = [&] { ++elected_c; }});

  CHECK(LeaderElection::CurrentLeader(s, "/kiln/leader").status().code() == Code::kNotFound);
  MustOk(ea.Start());
  REQUIRE(WaitUntil([&] { return elected_a == 1; }, 30s));
  CHECK(ea.is_leader());
  MustOk(eb.Start());
  MustOk(ec.Start());
  CHECK(eb.Start().code() == Code::kFailedPrecondition);
  REQUIRE(NumChildren(s, "/kiln/leader") == 3);
  auto leader = Must(LeaderElection::CurrentLeader(s, "/kiln/leader"));
  CHECK(leader.node == ea.node());
  CHECK(leader.data == "a");
  CHECK(!eb.is_leader());
  CHECK(!ec.is_leader());

  // The leader's session ends: the next candidate (b, not c) takes over,
  // and the old leader hears that it lost.
  MustOk(s.CloseSession(sa));
  REQUIRE(WaitUntil([&] { return elected_b == 1; }, 30s));
  CHECK(eb.is_leader());
  REQUIRE(WaitUntil(
      [&] {
        std::lock_guard lock(mu);
        return lost_a.has_value();
      },
      30s));
  {
    std::lock_guard lock(mu);
    CHECK(lost_a->code() == Code::kSessionExpired);
  }
  CHECK(!ea.is_leader());
  CHECK(elected_c == 0);
  CHECK(Must(LeaderElection::CurrentLeader(s, "/kiln/leader")).data == "b");

  // b resigns: c leads. Each was elected exactly once.
  MustOk(eb.Resign());
  CHECK(!eb.is_leader());
  REQUIRE(WaitUntil([&] { return elected_c == 1; }, 30s));
  CHECK(ec.is_leader());
  CHECK(elected_a == 1);
  CHECK(elected_b == 1);
  CHECK(Must(LeaderElection::CurrentLeader(s, "/kiln/leader")).data == "c");
}

TEST_CASE("leader: a middle candidate leaving does not elect the one behind it") {
  log::SetLevel(log::Level::kError);
  EmbeddedBackend b;
  auto& s = b.store();
  auto sa = Must(s.CreateSession(60s)).id;
  auto sb = Must(s.CreateSession(60s)).id;
  auto sc = Must(s.CreateSession(60s)).id;
  std::atomic<int> elected_c{0};
  std::atomic<bool> a_elected{false};
  LeaderElection ea(s, "/e", sa, "a", {.on_elected = [&] { a_elected = true; }});
  LeaderElection eb(s, "/e", sb, "b", {});
  LeaderElection ec(s, "/e", sc, "c", {.on_elected = [&] { ++elected_c; }});
  MustOk(ea.Start());
  REQUIRE(WaitUntil([&] { return a_elected.load(); }, 30s));
  MustOk(eb.Start());
  MustOk(ec.Start());
  MustOk(s.CloseSession(sb));  // c now watches a, re-armed through its re-read
  REQUIRE(WaitUntil([&] { return NumChildren(s, "/e") == 2; }, 30s));
  CHECK(!ec.is_leader());
  MustOk(ea.Resign());
  REQUIRE(WaitUntil([&] { return elected_c == 1; }, 30s));
  CHECK(ec.is_leader());
}

TEST_CASE("group: members appear and disappear, with their data") {
  log::SetLevel(log::Level::kError);
  EmbeddedBackend b;
  auto& s = b.store();
  auto sa = Must(s.CreateSession(60s)).id;
  auto sb = Must(s.CreateSession(60s)).id;
  std::mutex mu;
  std::vector<std::vector<std::string>> seen;
  std::optional<Status> ended;
  auto latest = [&] {
    std::lock_guard lock(mu);
    return seen.empty() ? std::vector<std::string>{"<none>"} : seen.back();
  };
  GroupWatch w(
      s, "/kiln/servers",
      [&](const std::vector<std::string>& names) {
        std::lock_guard lock(mu);
        seen.push_back(names);
      },
      [&](Status st) {
        std::lock_guard lock(mu);
        ended = st;
      });
  MustOk(w.Start());
  REQUIRE(WaitUntil([&] { return latest().empty(); }, 30s));

  GroupMember ma(s, "/kiln/servers", "srv-a", sa, "10.0.0.1:8080");
  GroupMember mb(s, "/kiln/servers", "srv-b", sb, "10.0.0.2:8080");
  MustOk(ma.Join());
  MustOk(mb.Join());
  REQUIRE(WaitUntil([&] { return latest() == std::vector<std::string>{"srv-a", "srv-b"}; }, 30s));
  auto members = Must(ListMembers(s, "/kiln/servers"));
  REQUIRE(members.size() == 2);
  CHECK(members[0].name == "srv-a");
  CHECK(members[0].data == "10.0.0.1:8080");
  CHECK(members[0].session == sa);
  CHECK(members[1].data == "10.0.0.2:8080");

  // The name is taken; names must be one component.
  GroupMember dup(s, "/kiln/servers", "srv-a", sb, "x");
  CHECK(dup.Join().code() == Code::kAlreadyExists);
  GroupMember bad(s, "/kiln/servers", "a/b", sb, "x");
  CHECK(bad.Join().code() == Code::kInvalidArgument);

  MustOk(mb.Update("10.0.0.2:9090"));
  CHECK(Must(ListMembers(s, "/kiln/servers"))[1].data == "10.0.0.2:9090");

  // A member's session ends: it leaves by itself.
  MustOk(s.CloseSession(sa));
  REQUIRE(WaitUntil([&] { return latest() == std::vector<std::string>{"srv-b"}; }, 30s));
  MustOk(mb.Leave());
  CHECK(!mb.joined());
  REQUIRE(WaitUntil([&] { return latest().empty(); }, 30s));
  MustOk(ma.Leave());  // already gone with its session: still OK

  // Each call reported a change: no list twice in a row.
  {
    std::lock_guard lock(mu);
    for (size_t i = 1; i < seen.size(); ++i) CHECK(seen[i] != seen[i - 1]);
  }

  // The group directory deleted: the watch ends with kNotFound.
  MustOk(s.Delete("/kiln/servers"));
  REQUIRE(WaitUntil(
      [&] {
        std::lock_guard lock(mu);
        return ended.has_value();
      },
      30s));
  std::lock_guard lock(mu);
  CHECK(ended->code() == Code::kNotFound);
}
