// coord_http_bench: durable updates per second through kiln's HTTP API
// (PUT /api/v1/coord/data/{path} against a running `kiln serve` with its
// embedded store) against a standalone ZooKeeper server through its native
// C client, with the same number of set operations in flight on each side
// (bench/coord/run --http starts both and builds this in Release).
//
//   coord_http_bench --url http://127.0.0.1:PORT --token TOKEN --zk HOST:PORT
//                    [--seconds 5] [--rounds 3] [--inflight 256]
//                    [--http-threads 2] [--zk-clients 16] [--znodes 1000]
//                    [--size 100]
//
// kiln: --inflight keep-alive HTTP/1.1 connections, spread over
// --http-threads libcurl multi loops; each connection has one PUT in flight
// (no pipelining) and sends the next when the 200 arrives, which kiln sends
// only after the update's log record is fsync'd (group commit).
// ZooKeeper: --zk-clients sessions (each its own TCP connection, through
// kiln's zk:// CoordStore backend over the native C client, asynchronous),
// each keeping --inflight / --zk-clients SetData requests in flight;
// ZooKeeper answers after its transaction log is fsync'd (forceSync).
// Every request overwrites one of --znodes znodes with --size bytes; any
// error or non-2xx answer stops the run. Each round runs both, alternating
// which goes first; fresh znodes per round. A PUT unanswered after 10 s is
// counted and reported as "unanswered" (not as done), since kiln answers
// every durable update or fails it; any other error stops the run. Prints a
// table of medians and one JSON line.

#include <curl/curl.h>
#include <fmt/format.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "bench/coord/bench_support.h"
#include "common/hash.h"
#include "common/http_client.h"
#include "common/json.h"
#include "common/log.h"
#include "server/coord/coord_store.h"

using namespace kiln;
using namespace kiln::coord;
using bench::Check;
using bench::Die;
using bench::Median;
using bench::Slots;
using Clock = std::chrono::steady_clock;

namespace {

struct Flags {
  std::string url;
  std::string token;
  std::string zk;
  double seconds = 5;
  int rounds = 3;
  int inflight = 256;
  int http_threads = 2;
  int zk_clients = 16;
  int znodes = 1000;
  size_t size = 100;
};

struct Request {
  const char* method;
  std::string path;  // under the server's URL
  std::string body;
};

// Makes connection `conn`'s request number `seq`; false: no more requests.
using Make = std::function<bool(int conn, uint64_t seq, Request&)>;

// One connection's state in a multi loop.
struct Conn {
  CURL* easy = nullptr;
  int id = 0;
  uint64_t seq = 0;
  std::string url;
  Request req;
  std::string reply;
};

size_t Append(char* p, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(p, size * n);
  return size * n;
}

// Drives `conns` keep-alive connections from one thread until `stop` (or
// `make` runs out), counting 2xx answers into `done` and requests that time
// out into `lost`. Dies on any other failure.
void MultiLoop(const Flags& f, int first_conn, int conns, const Make& make,
               const std::atomic<bool>& stop, std::atomic<uint64_t>& done,
               std::atomic<uint64_t>& lost) {
  CURLM* multi = curl_multi_init();
  curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, static_cast<long>(conns));
  curl_slist* headers = nullptr;
  headers = curl_slist_append(headers, ("Authorization: Bearer " + f.token).c_str());
  headers = curl_slist_append(headers, "Content-Type: application/json");
  headers = curl_slist_append(headers, "Expect:");  // no 100-continue round trip
  std::vector<Conn> cs(static_cast<size_t>(conns));
  int running = 0;
  auto issue = [&](Conn& c) {
    c.req = Request{};
    if (stop.load(std::memory_order_relaxed) || !make(c.id, c.seq++, c.req)) return;
    c.url = f.url + c.req.path;
    c.reply.clear();
    curl_easy_setopt(c.easy, CURLOPT_URL, c.url.c_str());
    curl_easy_setopt(c.easy, CURLOPT_CUSTOMREQUEST, c.req.method);
    curl_easy_setopt(c.easy, CURLOPT_POSTFIELDS, c.req.body.c_str());
    curl_easy_setopt(c.easy, CURLOPT_POSTFIELDSIZE, static_cast<long>(c.req.body.size()));
    curl_multi_add_handle(multi, c.easy);
    ++running;
  };
  for (int i = 0; i < conns; ++i) {
    Conn& c = cs[static_cast<size_t>(i)];
    c.id = first_conn + i;
    c.easy = curl_easy_init();
    curl_easy_setopt(c.easy, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(c.easy, CURLOPT_WRITEFUNCTION, Append);
    curl_easy_setopt(c.easy, CURLOPT_WRITEDATA, &c.reply);
    curl_easy_setopt(c.easy, CURLOPT_PRIVATE, &c);
    curl_easy_setopt(c.easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c.easy, CURLOPT_TIMEOUT_MS, 10000L);
    issue(c);
  }
  while (running > 0) {
    int still = 0;
    curl_multi_perform(multi, &still);
    int left = 0;
    while (CURLMsg* m = curl_multi_info_read(multi, &left)) {
      if (m->msg != CURLMSG_DONE) continue;
      Conn* c = nullptr;
      curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &c);
      long code = 0;
      curl_easy_getinfo(m->easy_handle, CURLINFO_RESPONSE_CODE, &code);
      if (m->data.result == CURLE_OPERATION_TIMEDOUT) {
        lost.fetch_add(1, std::memory_order_relaxed);
        fmt::print(stderr, "unanswered after 10 s: {} {}\n", c->req.method, c->url);
      } else if (m->data.result != CURLE_OK) {
        Die(fmt::format("{} {}: {}", c->req.method, c->url, curl_easy_strerror(m->data.result)));
      } else if (code < 200 || code > 299) {
        Die(fmt::format("{} {}: HTTP {}: {}", c->req.method, c->url, code, c->reply));
      } else {
        done.fetch_add(1, std::memory_order_relaxed);
      }
      curl_multi_remove_handle(multi, m->easy_handle);
      --running;
      issue(*c);
    }
    if (running > 0) curl_multi_poll(multi, nullptr, 0, 100, nullptr);
  }
  for (Conn& c : cs) curl_easy_cleanup(c.easy);
  curl_slist_free_all(headers);
  curl_multi_cleanup(multi);
}

// Runs `make` over f.inflight connections for `seconds` (or until it runs
// out, when seconds <= 0); returns 2xx answers per second and adds
// unanswered requests to `lost`.
double HttpThroughput(const Flags& f, double seconds, const Make& make,
                      std::atomic<uint64_t>& lost) {
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> done{0};
  std::vector<std::thread> threads;
  auto start = Clock::now();
  int per = (f.inflight + f.http_threads - 1) / f.http_threads;
  for (int t = 0, first = 0; first < f.inflight; ++t, first += per) {
    int n = std::min(per, f.inflight - first);
    threads.emplace_back([&, first, n] { MultiLoop(f, first, n, make, stop, done, lost); });
  }
  uint64_t at_stop = 0;
  double elapsed = 0;
  if (seconds > 0) {
    std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
    at_stop = done.load();
    elapsed = std::chrono::duration<double>(Clock::now() - start).count();
    stop = true;
  }
  for (auto& th : threads) th.join();
  if (seconds <= 0) {
    at_stop = done.load();
    elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  }
  return static_cast<double>(at_stop) / elapsed;
}

std::string Node(int i) {
  return fmt::format("/n/{:06}", i);
}

int Pick(const Flags& f, int conn, uint64_t seq) {
  return static_cast<int>((static_cast<uint64_t>(conn) * 7919 + seq) %
                          static_cast<uint64_t>(f.znodes));
}

// kiln over HTTP: creates /hb-R/n/... then times sets on them.
double RunKiln(const Flags& f, int round, std::atomic<uint64_t>& lost) {
  std::string root = fmt::format("/api/v1/coord/data/hb-{}-{}", round, RandomHex(4));
  HttpClient client(f.url, f.token);
  for (const std::string& p : {root, root + "/n"}) {
    auto r = Check(client.Do("POST", p, "{}", {.content_type = "application/json"}), "POST " + p);
    if (r.status != 201) Die(fmt::format("POST {}: HTTP {}: {}", p, r.status, r.body));
  }
  std::string body = Json{{"data", std::string(f.size, 'y')}}.dump();
  std::atomic<int> next{0};
  HttpThroughput(
      f, 0,
      [&](int, uint64_t, Request& r) {
        int i = next.fetch_add(1);
        if (i >= f.znodes) return false;
        r = Request{"POST", root + Node(i), body};
        return true;
      },
      lost);
  return HttpThroughput(
      f, f.seconds,
      [&](int conn, uint64_t seq, Request& r) {
        r = Request{"PUT", root + Node(Pick(f, conn, seq)), body};
        return true;
      },
      lost);
}

// ZooKeeper through the native C client: the same sets, as many in flight.
double RunZooKeeper(const Flags& f, int round) {
  CoordOptions o;
  o.url = fmt::format("zk://{}/hb-{}-{}", f.zk, round, RandomHex(4));
  std::vector<std::unique_ptr<CoordStore>> stores;
  for (int i = 0; i < f.zk_clients; ++i)
    stores.push_back(Check(CoordStore::Open(o), "opening " + o.url));
  CoordStore& s0 = *stores[0];
  if (Status st = s0.EnsurePath("/n"); !st.ok()) Die("creating /n: " + st.ToString());
  std::string data(f.size, 'y');
  {
    Slots slots(256);
    std::atomic<int> failed{0};
    for (int i = 0; i < f.znodes; ++i) {
      slots.Acquire();
      s0.CreateAsync(CreateOp{.path = Node(i), .data = data}, [&](Result<CreateResult> r) {
        if (!r.ok()) ++failed;
        slots.Release();
      });
    }
    slots.WaitAll(256);
    if (failed) Die("zookeeper: populating failed");
  }
  int per = std::max(1, f.inflight / f.zk_clients);
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> done{0}, failed{0};
  std::vector<std::thread> threads;
  auto start = Clock::now();
  for (int c = 0; c < f.zk_clients; ++c) {
    threads.emplace_back([&, c] {
      Slots slots(per);
      CoordStore& s = *stores[static_cast<size_t>(c)];
      for (uint64_t seq = 0; !stop.load(std::memory_order_relaxed); ++seq) {
        slots.Acquire();
        s.SetAsync(SetOp{.path = Node(Pick(f, c, seq)), .data = data}, [&](Result<SetResult> r) {
          (r.ok() ? done : failed).fetch_add(1, std::memory_order_relaxed);
          slots.Release();
        });
      }
      slots.WaitAll(per);
    });
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(f.seconds));
  uint64_t at_stop = done.load();
  double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  stop = true;
  for (auto& th : threads) th.join();
  if (failed.load() != 0) Die(fmt::format("zookeeper: {} sets failed", failed.load()));
  return static_cast<double>(at_stop) / elapsed;
}

}  // namespace

int main(int argc, char** argv) {
  Flags f;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) Die("coord_http_bench: " + a + " needs a value");
      return argv[++i];
    };
    if (a == "--url")
      f.url = next();
    else if (a == "--token")
      f.token = next();
    else if (a == "--zk")
      f.zk = next();
    else if (a == "--seconds")
      f.seconds = std::stod(next());
    else if (a == "--rounds")
      f.rounds = std::stoi(next());
    else if (a == "--inflight")
      f.inflight = std::stoi(next());
    else if (a == "--http-threads")
      f.http_threads = std::stoi(next());
    else if (a == "--zk-clients")
      f.zk_clients = std::stoi(next());
    else if (a == "--znodes")
      f.znodes = std::stoi(next());
    else if (a == "--size")
      f.size = std::stoul(next());
    else
      Die("coord_http_bench: unknown argument " + a +
          " (see the top of bench/coord/http_bench.cc)");
  }
  if (f.url.empty() || f.token.empty() || f.zk.empty())
    Die("coord_http_bench: --url, --token and --zk are required");
  if (f.inflight < 1 || f.http_threads < 1 || f.zk_clients < 1 || f.znodes < 1 || f.seconds <= 0)
    Die("coord_http_bench: --inflight, --http-threads, --zk-clients, --znodes and --seconds must "
        "be positive");
  log::SetLevel(log::Level::kWarn);
  curl_global_init(CURL_GLOBAL_DEFAULT);

  std::map<std::string, std::vector<double>> results;
  std::atomic<uint64_t> lost{0};
  for (int round = 0; round < f.rounds; ++round) {
    for (int b = 0; b < 2; ++b) {
      bool kiln = (b == 0) == (round % 2 == 0);
      double v = kiln ? RunKiln(f, round, lost) : RunZooKeeper(f, round);
      results[kiln ? "kiln-http" : "zookeeper"].push_back(v);
      fmt::print(stderr, "round {} {}: set {:.0f}/s\n", round + 1, kiln ? "kiln HTTP" : "ZooKeeper",
                 v);
    }
  }
  double k = Median(results["kiln-http"]), z = Median(results["zookeeper"]);
  fmt::print(
      "coord_http_bench: {} sets in flight (kiln: {} connections over {} threads; ZooKeeper: {} "
      "sessions x {}), {} znodes of {} bytes, {} s per run, medians of {} rounds\n",
      f.inflight, f.inflight, f.http_threads, f.zk_clients, std::max(1, f.inflight / f.zk_clients),
      f.znodes, f.size, f.seconds, f.rounds);
  fmt::print("{:<28} {:>14} {:>14} {:>10}\n", "workload", "kiln HTTP", "zookeeper", "kiln/zk");
  fmt::print("{:<28} {:>14.0f} {:>14.0f} {:>9.2f}x\n", "set (durable updates/s)", k, z, k / z);
  Json j = {{"set", {{"kiln_http", k}, {"zookeeper", z}, {"ratio", k / z}}},
            {"rounds", {{"kiln_http", results["kiln-http"]}, {"zookeeper", results["zookeeper"]}}}};
  j["kiln_http_unanswered"] = lost.load();
  if (lost.load() != 0)
    fmt::print("kiln HTTP: {} requests unanswered after 10 s (counted as not done)\n", lost.load());
  fmt::print("{}\n", j.dump());
  curl_global_cleanup();
  return 0;
}
