// coord_bench: kiln's embedded coordination store against a real ZooKeeper
// server, through the same CoordStore interface (bench/coord/run starts the
// server and builds this in Release).
//
//   coord_bench --zk HOST:PORT --dir DIR [--seconds 5] [--clients 16]
//               [--inflight 64] [--znodes 1000] [--size 100]
//               [--watchers 1000] [--fanout-rounds 50] [--rounds 3]
//
// Workloads, each run on both backends in alternation, --rounds times:
//   set      SetAsync of --size bytes on --znodes znodes, --clients clients
//            each keeping --inflight requests in flight (durable updates)
//   set-1    the same with one client and one request in flight (latency
//            bound: one fsync per update)
//   create   CreateAsync of new --size byte znodes, as `set`
//   get      GetAsync, as `set`
//   fanout   --watchers one-shot data watches on one znode, then one set:
//            time from issuing the set to the last watcher's call
//
// Native paths: each embedded client shares the one in-process store (as
// kiln's HTTP handlers do); each ZooKeeper client is a CoordStore of its own
// (its own ZooKeeper session and connection, as separate kiln servers or
// programs would be). Fan-out uses one store per backend (one session).
// Both are durable by default: the embedded store fsyncs its log (group
// commit), ZooKeeper runs with its default forceSync.
//
// Prints a table and, last, one JSON line with every median.

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "bench/coord/bench_support.h"
#include "common/file_util.h"
#include "common/hash.h"
#include "common/json.h"
#include "common/log.h"
#include "server/coord/coord_store.h"

using namespace kiln;
using namespace kiln::coord;
using Clock = std::chrono::steady_clock;
using bench::Check;
using bench::Die;
using bench::FlagReader;
using bench::Median;
using bench::Percentile;
using bench::Slots;

namespace {

struct Flags {
  std::string zk;
  std::string dir;
  double seconds = 5;
  int clients = 16;
  int inflight = 64;
  int znodes = 1000;
  size_t size = 100;
  int watchers = 1000;
  int fanout_rounds = 50;
  int rounds = 3;
};

// One backend under test: the stores its clients use.
struct Target {
  std::string name;
  std::vector<std::unique_ptr<CoordStore>> stores;
  CoordStore& For(int client) { return *stores[static_cast<size_t>(client) % stores.size()]; }
};

Target OpenEmbedded(const Flags& f, int round) {
  Target t{"embedded", {}};
  CoordOptions o;
  o.url = fmt::format("embedded:{}/embedded-{}", f.dir, round);
  t.stores.push_back(Check(CoordStore::Open(o), "opening " + o.url));
  return t;
}

Target OpenZooKeeper(const Flags& f, int round, int clients) {
  Target t{"zookeeper", {}};
  CoordOptions o;
  o.url = fmt::format("zk://{}/bench-{}-{}", f.zk, round, RandomHex(4));
  for (int i = 0; i < clients; ++i)
    t.stores.push_back(Check(CoordStore::Open(o), "opening " + o.url));
  return t;
}

// Runs `issue` from every client, keeping inflight requests each, for the
// given time; returns completed operations per second. issue(store, client,
// seq, done) must call done(ok) exactly once.
using Issue = std::function<void(CoordStore&, int, uint64_t, std::function<void(bool)>)>;
double Throughput(Target& t, int clients, int inflight, double seconds, const Issue& issue) {
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> done{0}, failed{0};
  std::vector<std::thread> threads;
  auto start = Clock::now();
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back([&, c] {
      Slots slots(inflight);
      for (uint64_t seq = 0; !stop.load(std::memory_order_relaxed); ++seq) {
        slots.Acquire();
        issue(t.For(c), c, seq, [&](bool ok) {
          (ok ? done : failed).fetch_add(1, std::memory_order_relaxed);
          slots.Release();
        });
      }
      slots.WaitAll(inflight);
    });
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  uint64_t at_stop = done.load();
  double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  stop = true;
  for (auto& th : threads) th.join();
  if (failed.load() != 0) Die(fmt::format("{}: {} operations failed", t.name, failed.load()));
  return static_cast<double>(at_stop) / elapsed;
}

std::string Node(int i) {
  return fmt::format("/n/{:06}", i);
}

void Populate(CoordStore& s, const Flags& f) {
  if (Status st = s.EnsurePath("/n"); !st.ok()) Die("creating /n: " + st.ToString());
  if (Status st = s.EnsurePath("/c"); !st.ok()) Die("creating /c: " + st.ToString());
  std::string data(f.size, 'x');
  Slots slots(256);
  std::atomic<int> failed{0};
  for (int i = 0; i < f.znodes; ++i) {
    slots.Acquire();
    s.CreateAsync(CreateOp{.path = Node(i), .data = data}, [&](Result<CreateResult> r) {
      if (!r.ok()) ++failed;
      slots.Release();
    });
  }
  slots.WaitAll(256);
  if (failed) Die("populating failed");
}

// Time from a set to its last watcher, per round, in microseconds.
std::vector<double> Fanout(CoordStore& s, const Flags& f) {
  if (Status st = s.EnsurePath("/w"); !st.ok()) Die("creating /w: " + st.ToString());
  std::vector<double> out;
  for (int r = 0; r < f.fanout_rounds; ++r) {
    std::mutex mu;
    std::condition_variable cv;
    int fired = 0, registered = 0;
    Clock::time_point last;
    for (int i = 0; i < f.watchers; ++i) {
      s.GetAsync(
          "/w",
          [&](const WatchEvent&) {
            std::lock_guard lock(mu);
            last = Clock::now();
            ++fired;
            cv.notify_all();
          },
          [&](Result<GetResult> g) {
            if (!g.ok()) Die("fanout get: " + g.status().ToString());
            std::lock_guard lock(mu);
            ++registered;
            cv.notify_all();
          });
    }
    {
      std::unique_lock lock(mu);
      cv.wait(lock, [&] { return registered == f.watchers; });
    }
    auto t0 = Clock::now();
    s.SetAsync(SetOp{.path = "/w", .data = std::to_string(r)}, [](Result<SetResult> res) {
      if (!res.ok()) Die("fanout set: " + res.status().ToString());
    });
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return fired == f.watchers; });
    out.push_back(std::chrono::duration<double, std::micro>(last - t0).count());
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  Flags f;
  for (FlagReader r("coord_bench", argc, argv); r.Next();) {
    const std::string& a = r.flag();
    if (a == "--zk")
      f.zk = r.Value();
    else if (a == "--dir")
      f.dir = r.Value();
    else if (a == "--seconds")
      f.seconds = std::stod(r.Value());
    else if (a == "--clients")
      f.clients = std::stoi(r.Value());
    else if (a == "--inflight")
      f.inflight = std::stoi(r.Value());
    else if (a == "--znodes")
      f.znodes = std::stoi(r.Value());
    else if (a == "--size")
      f.size = std::stoul(r.Value());
    else if (a == "--watchers")
      f.watchers = std::stoi(r.Value());
    else if (a == "--fanout-rounds")
      f.fanout_rounds = std::stoi(r.Value());
    else if (a == "--rounds")
      f.rounds = std::stoi(r.Value());
    else
      Die("unknown argument " + a + " (see the top of bench/coord/coord_bench.cc)");
  }
  if (f.zk.empty() || f.dir.empty()) Die("--zk HOST:PORT and --dir DIR are required");
  log::SetLevel(log::Level::kWarn);

  // results[workload][backend] = per-round values
  std::map<std::string, std::map<std::string, std::vector<double>>> results;
  std::string data(f.size, 'y');
  for (int round = 0; round < f.rounds; ++round) {
    for (int b = 0; b < 2; ++b) {
      // Alternate which backend goes first, so neither always runs on a
      // warmer (or busier) machine.
      bool embedded = (b == 0) == (round % 2 == 0);
      Target t = embedded ? OpenEmbedded(f, round) : OpenZooKeeper(f, round, f.clients);
      Populate(t.For(0), f);
      auto set = [&](CoordStore& s, int c, uint64_t seq, std::function<void(bool)> done) {
        int n = static_cast<int>((static_cast<uint64_t>(c) * 7919 + seq) %
                                 static_cast<uint64_t>(f.znodes));
        s.SetAsync(SetOp{.path = Node(n), .data = data},
                   [done = std::move(done)](Result<SetResult> r) { done(r.ok()); });
      };
      auto create = [&](CoordStore& s, int c, uint64_t seq, std::function<void(bool)> done) {
        s.CreateAsync(CreateOp{.path = fmt::format("/c/{}-{}", c, seq), .data = data},
                      [done = std::move(done)](Result<CreateResult> r) { done(r.ok()); });
      };
      auto get = [&](CoordStore& s, int c, uint64_t seq, std::function<void(bool)> done) {
        int n = static_cast<int>((static_cast<uint64_t>(c) * 7919 + seq) %
                                 static_cast<uint64_t>(f.znodes));
        s.GetAsync(Node(n), nullptr,
                   [done = std::move(done)](Result<GetResult> r) { done(r.ok()); });
      };
      auto& R = results;
      R["set"][t.name].push_back(Throughput(t, f.clients, f.inflight, f.seconds, set));
      R["set-1"][t.name].push_back(Throughput(t, 1, 1, f.seconds, set));
      R["create"][t.name].push_back(Throughput(t, f.clients, f.inflight, f.seconds, create));
      R["get"][t.name].push_back(Throughput(t, f.clients, f.inflight, f.seconds, get));
      auto fan = Fanout(t.For(0), f);
      R["fanout-p50-us"][t.name].push_back(Percentile(fan, 0.5));
      R["fanout-p99-us"][t.name].push_back(Percentile(fan, 0.99));
      fmt::print(
          stderr,
          "round {} {}: set {:.0f}/s, create {:.0f}/s, get {:.0f}/s, fan-out p99 {:.0f} us\n",
          round + 1, t.name, R["set"][t.name].back(), R["create"][t.name].back(),
          R["get"][t.name].back(), R["fanout-p99-us"][t.name].back());
    }
  }

  fmt::print(
      "coord_bench: {} clients x {} in flight, {} znodes of {} bytes, {} s per run, "
      "{} watchers, medians of {} rounds\n",
      f.clients, f.inflight, f.znodes, f.size, f.seconds, f.watchers, f.rounds);
  fmt::print("{:<16} {:>14} {:>14} {:>18}\n", "workload", "embedded", "zookeeper",
             "embedded/zookeeper");
  Json j = Json::object();
  for (const char* w : {"set", "set-1", "create", "get", "fanout-p50-us", "fanout-p99-us"}) {
    double e = Median(results[w]["embedded"]), z = Median(results[w]["zookeeper"]);
    bool latency = std::string(w).find("-us") != std::string::npos;
    // For latencies the ratio is zookeeper/embedded, so >1 means kiln wins.
    double ratio = latency ? z / e : e / z;
    fmt::print("{:<16} {:>14.0f} {:>14.0f} {:>17.2f}x{}\n", w, e, z, ratio,
               latency ? "  (zookeeper/embedded: lower latency is better)" : "  ops/s");
    j[w] = {{"embedded", e}, {"zookeeper", z}, {"ratio", ratio}};
  }
  fmt::print("{}\n", j.dump());
  return 0;
}
