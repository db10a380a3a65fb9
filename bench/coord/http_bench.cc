// coord_http_bench: durable updates per second through kiln's HTTP API
// (a running `kiln serve` with its embedded store) against a standalone
// ZooKeeper server through its native C client (libzookeeper-mt's
// asynchronous zoo_aset), with the same number of updates in flight on each
// side (bench/coord/run --http starts both and builds this in Release).
//
//   coord_http_bench --url http://127.0.0.1:PORT --token TOKEN --zk HOST:PORT
//                    [--seconds 5] [--rounds 3] [--inflight 256]
//                    [--http-threads 2] [--zk-clients 16] [--znodes 1000]
//                    [--size 100] [--batch 64] [--batch-conns 16]
//                    [--only kiln|zookeeper] [--client raw|lib]
//
// --client raw (the default) drives both sides with the lean epoll clients
// of raw_clients.h (plain HTTP/1.1 sockets; ZooKeeper's binary protocol),
// --http-threads threads on each side; --client lib with libcurl's multi
// interface and libzookeeper-mt's zoo_aset, as described below.
//
// Three workloads, each run on both sides in every round (alternating which
// goes first; fresh znodes per round):
//
// - one update per request: kiln: --inflight keep-alive HTTP/1.1
//   connections over --http-threads libcurl multi loops, each with one
//   `PUT /api/v1/coord/data/{path}` in flight, the next sent when the 200
//   arrives. ZooKeeper: --zk-clients sessions (each its own TCP
//   connection), --inflight / --zk-clients zoo_aset in flight on each.
// - pipelined: kiln: --batch-conns connections, each with one
//   `POST /api/v1/coord/batch` of --batch independent sets in flight
//   (each set its own update with its own result). ZooKeeper: the same
//   number of updates in flight (--batch-conns x --batch), spread over
//   --zk-clients sessions: the C client pipelines them on each connection.
// - one update per request, HTTP pipelining (raw client): kiln shaped as
//   ZooKeeper's sessions are: --zk-clients connections, each with
//   --inflight / --zk-clients `PUT`s written back to back, answers read in
//   order. ZooKeeper: as in the first workload.
//
// --only runs one side (for profiling one of them; no ratios).
//
// Both sides answer an update only after its log record is fsync'd (kiln:
// group commit; ZooKeeper: forceSync). Every update overwrites one of
// --znodes znodes with --size bytes. A request unanswered after 10 s is
// counted and reported as "unanswered" (not as done), since kiln answers
// every durable update or fails it; any other error or failed update stops
// the run. Prints a table of medians and one JSON line.

#include <curl/curl.h>
#include <fmt/format.h>
#include <zookeeper/zookeeper.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "bench/coord/bench_support.h"
#include "bench/coord/raw_clients.h"
#include "common/hash.h"
#include "common/http_client.h"
#include "common/json.h"
#include "common/log.h"

using namespace kiln;
using bench::Check;
using bench::Die;
using bench::FlagReader;
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
  int batch = 64;
  int batch_conns = 16;
  std::string only;  // "", "kiln" or "zookeeper"
  // "raw": bench/coord/raw_clients.h on both sides; "lib": libcurl's multi
  // interface for kiln and libzookeeper-mt for ZooKeeper.
  std::string client = "raw";
};

using Request = bench::HttpCall;

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
// `make` runs out), counting the updates of 2xx answers into `done` and
// requests that time out into `lost`. Dies on any other failure, including
// a batch answer that reports a failed update.
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
      } else if (c->req.updates > 1 && c->reply.find("\"error\"") != std::string::npos) {
        Die(fmt::format("{} {}: an update failed: {}", c->req.method, c->url, c->reply));
      } else {
        done.fetch_add(static_cast<uint64_t>(c->req.updates), std::memory_order_relaxed);
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

// Runs `make` over `conns` connections for `seconds` (or until it runs
// out, when seconds <= 0); returns updates answered per second and adds
// unanswered requests to `lost`.
double HttpThroughput(const Flags& f, int conns, int depth, double seconds, const Make& make,
                      std::atomic<uint64_t>& lost) {
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> done{0};
  std::vector<std::thread> threads;
  auto start = Clock::now();
  int per = (conns + f.http_threads - 1) / f.http_threads;
  for (int t = 0, first = 0; first < conns; ++t, first += per) {
    int n = std::min(per, conns - first);
    threads.emplace_back([&, first, n] {
      if (f.client == "lib") return MultiLoop(f, first, n, make, stop, done, lost);
      bench::HttpLoop(
          bench::ParseHttpUrl(f.url, f.token), first, n, depth,
          [&](int conn, uint64_t seq, bench::HttpCall* call) { return make(conn, seq, *call); },
          stop, done, lost);
    });
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

// kiln over HTTP: creates /hb-R/n/... then times sets on them, one per
// request (batch == 0) or `batch` per POST /api/v1/coord/batch.
double RunKiln(const Flags& f, int round, int batch, int depth, std::atomic<uint64_t>& lost) {
  std::string znodes = fmt::format("/hb-{}-{}", round, RandomHex(4));
  std::string root = "/api/v1/coord/data" + znodes;
  HttpClient client(f.url, f.token);
  for (const std::string& p : {root, root + "/n"}) {
    auto r = Check(client.Do("POST", p, "{}", {.content_type = "application/json"}), "POST " + p);
    if (r.status != 201) Die(fmt::format("POST {}: HTTP {}: {}", p, r.status, r.body));
  }
  std::string data(f.size, 'y');
  std::string body = Json{{"data", data}}.dump();
  std::atomic<int> next{0};
  HttpThroughput(
      f, f.inflight, 1, 0,
      [&](int, uint64_t, Request& r) {
        int i = next.fetch_add(1);
        if (i >= f.znodes) return false;
        r.method = "POST";
        r.path = root + Node(i);
        r.body = body;
        return true;
      },
      lost);
  if (batch == 0)  // depth > 1: shaped as ZooKeeper's sessions, zk_clients x depth
    return HttpThroughput(
        f, depth > 1 ? f.zk_clients : f.inflight, depth, f.seconds,
        [&](int conn, uint64_t seq, Request& r) {
          r.method = "PUT";
          r.path = root + Node(Pick(f, conn, seq));
          r.body = body;
          return true;
        },
        lost);
  return HttpThroughput(
      f, f.batch_conns, 1, f.seconds,
      [&](int conn, uint64_t seq, Request& r) {
        // Paths and data need no escaping: plain appends are the JSON.
        r.method = "POST";
        r.path = "/api/v1/coord/batch";
        r.updates = batch;
        r.body.assign(R"({"ops":[)");
        for (int k = 0; k < batch; ++k) {
          if (k) r.body.push_back(',');
          r.body.append(R"({"op":"set","path":")").append(znodes);
          r.body.append(
              Node(Pick(f, conn, seq * static_cast<uint64_t>(batch) + static_cast<uint64_t>(k))));
          r.body.append(R"(","data":")").append(data).append(R"("})");
        }
        r.body.append("]}");
        return true;
      },
      lost);
}

// ---- ZooKeeper through its C client's asynchronous API ---------------------------

// One session: zookeeper_init and wait for the connected state.
class ZkSession {
 public:
  explicit ZkSession(const std::string& hosts) {
    zh_ = zookeeper_init(hosts.c_str(), &ZkSession::OnEvent, 30000, nullptr, this, 0);
    if (!zh_) Die("zookeeper " + hosts + ": zookeeper_init failed");
    std::unique_lock lock(mu_);
    if (!cv_.wait_for(lock, std::chrono::seconds(15), [&] { return connected_; }))
      Die("zookeeper " + hosts + ": no session within 15 s");
  }
  ~ZkSession() { zookeeper_close(zh_); }
  zhandle_t* zh() const { return zh_; }

 private:
  static void OnEvent(zhandle_t*, int type, int state, const char*, void* ctx) {
    auto* s = static_cast<ZkSession*>(ctx);
    if (type != ZOO_SESSION_EVENT || state != ZOO_CONNECTED_STATE) return;
    std::lock_guard lock(s->mu_);
    s->connected_ = true;
    s->cv_.notify_all();
  }
  zhandle_t* zh_ = nullptr;
  std::mutex mu_;
  std::condition_variable cv_;
  bool connected_ = false;
};

// Keeps up to `inflight` asynchronous calls going on one session. The
// completion runs on the client's completion thread.
struct ZkPipe {
  Slots slots;
  std::atomic<uint64_t>* done;
  std::atomic<uint64_t>* failed;
  std::atomic<int>* first_error;
  explicit ZkPipe(int inflight) : slots(inflight) {}
};

void ZkDone(int rc, const void* data) {
  auto* p = static_cast<ZkPipe*>(const_cast<void*>(data));
  if (rc == ZOK) {
    p->done->fetch_add(1, std::memory_order_relaxed);
  } else {
    p->failed->fetch_add(1, std::memory_order_relaxed);
    int none = 0;
    p->first_error->compare_exchange_strong(none, rc);
  }
  p->slots.Release();
}

void ZkStatDone(int rc, const ::Stat*, const void* data) {
  ZkDone(rc, data);
}

void ZkCreateDone(int rc, const char*, const void* data) {
  ZkDone(rc == ZNODEEXISTS ? ZOK : rc, data);
}

// The same sets against ZooKeeper: `inflight` spread over f.zk_clients
// sessions.
double RunZooKeeperRaw(const Flags& f, int round, int inflight) {
  std::string root = fmt::format("/hb-{}-{}", round, RandomHex(4));
  std::string data(f.size, 'y');
  std::atomic<bool> no_stop{false};
  std::atomic<uint64_t> done{0};
  // The two parents with no data, then the znodes, in order on one session.
  std::vector<std::string> paths = {root, root + "/n"};
  for (int i = 0; i < f.znodes; ++i) paths.push_back(root + Node(i));
  for (size_t i = 0; i < 2; ++i)
    bench::ZkLoop(
        f.zk, 1, 1, true, "",
        [&](int, uint64_t seq, std::string* p) {
          *p = paths[i];
          return seq == 0;
        },
        no_stop, done);
  bench::ZkLoop(
      f.zk, 1, 256, true, data,
      [&](int, uint64_t seq, std::string* p) {
        if (seq + 2 >= paths.size()) return false;
        *p = paths[seq + 2];
        return true;
      },
      no_stop, done);
  done = 0;
  int per = std::max(1, inflight / f.zk_clients);
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  auto start = Clock::now();
  int per_thread = (f.zk_clients + f.http_threads - 1) / f.http_threads;
  for (int first = 0; first < f.zk_clients; first += per_thread) {
    int n = std::min(per_thread, f.zk_clients - first);
    threads.emplace_back([&, first, n] {
      bench::ZkLoop(
          f.zk, n, per, false, data,
          [&, first](int s, uint64_t seq, std::string* p) {
            *p = root + Node(Pick(f, first + s, seq));
            return true;
          },
          stop, done);
    });
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(f.seconds));
  uint64_t at_stop = done.load();
  double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  stop = true;
  for (auto& th : threads) th.join();
  return static_cast<double>(at_stop) / elapsed;
}

double RunZooKeeper(const Flags& f, int round, int inflight) {
  if (f.client == "raw") return RunZooKeeperRaw(f, round, inflight);
  std::vector<std::unique_ptr<ZkSession>> sessions;
  for (int i = 0; i < f.zk_clients; ++i) sessions.push_back(std::make_unique<ZkSession>(f.zk));
  std::string root = fmt::format("/hb-{}-{}", round, RandomHex(4));
  std::string data(f.size, 'y');
  std::atomic<uint64_t> done{0}, failed{0};
  std::atomic<int> first_error{0};
  auto fail_if_any = [&](const std::string& what) {
    if (failed.load() != 0)
      Die(fmt::format("zookeeper: {} {} failed ({})", failed.load(), what,
                      zerror(first_error.load())));
  };
  {
    ZkPipe pipe(256);
    pipe.done = &done;
    pipe.failed = &failed;
    pipe.first_error = &first_error;
    zhandle_t* zh = sessions[0]->zh();
    std::vector<std::string> paths = {root, root + "/n"};
    for (int i = 0; i < f.znodes; ++i) paths.push_back(root + Node(i));
    for (size_t i = 0; i < paths.size(); ++i) {
      // The two parents first: creates on one session run in order.
      pipe.slots.Acquire();
      if (zoo_acreate(zh, paths[i].c_str(), i < 2 ? nullptr : data.data(),
                      i < 2 ? -1 : static_cast<int>(data.size()), &ZOO_OPEN_ACL_UNSAFE,
                      ZOO_PERSISTENT, ZkCreateDone, &pipe) != ZOK)
        Die("zookeeper: zoo_acreate refused");
    }
    pipe.slots.WaitAll(256);
    fail_if_any("creates");
  }
  done = 0;
  int per = std::max(1, inflight / f.zk_clients);
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  auto start = Clock::now();
  for (int c = 0; c < f.zk_clients; ++c) {
    threads.emplace_back([&, c] {
      ZkPipe pipe(per);
      pipe.done = &done;
      pipe.failed = &failed;
      pipe.first_error = &first_error;
      zhandle_t* zh = sessions[static_cast<size_t>(c)]->zh();
      std::string path;
      for (uint64_t seq = 0; !stop.load(std::memory_order_relaxed); ++seq) {
        pipe.slots.Acquire();
        path = root + Node(Pick(f, c, seq));
        if (zoo_aset(zh, path.c_str(), data.data(), static_cast<int>(data.size()), -1, ZkStatDone,
                     &pipe) != ZOK)
          ZkDone(ZSYSTEMERROR, &pipe);
      }
      pipe.slots.WaitAll(per);
    });
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(f.seconds));
  uint64_t at_stop = done.load();
  double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  stop = true;
  for (auto& th : threads) th.join();
  fail_if_any("sets");
  return static_cast<double>(at_stop) / elapsed;
}

}  // namespace

int main(int argc, char** argv) {
  Flags f;
  for (FlagReader r("coord_http_bench", argc, argv); r.Next();) {
    const std::string& a = r.flag();
    if (a == "--url")
      f.url = r.Value();
    else if (a == "--token")
      f.token = r.Value();
    else if (a == "--zk")
      f.zk = r.Value();
    else if (a == "--seconds")
      f.seconds = std::stod(r.Value());
    else if (a == "--rounds")
      f.rounds = std::stoi(r.Value());
    else if (a == "--inflight")
      f.inflight = std::stoi(r.Value());
    else if (a == "--http-threads")
      f.http_threads = std::stoi(r.Value());
    else if (a == "--zk-clients")
      f.zk_clients = std::stoi(r.Value());
    else if (a == "--znodes")
      f.znodes = std::stoi(r.Value());
    else if (a == "--size")
      f.size = std::stoul(r.Value());
    else if (a == "--batch")
      f.batch = std::stoi(r.Value());
    else if (a == "--batch-conns")
      f.batch_conns = std::stoi(r.Value());
    else if (a == "--only")
      f.only = r.Value();
    else if (a == "--client")
      f.client = r.Value();
    else
      Die("coord_http_bench: unknown argument " + a +
          " (see the top of bench/coord/http_bench.cc)");
  }
  if (f.client != "raw" && f.client != "lib")
    Die("coord_http_bench: --client takes raw or lib, not " + f.client);
  if (f.only != "" && f.only != "kiln" && f.only != "zookeeper")
    Die("coord_http_bench: --only takes kiln or zookeeper, not " + f.only);
  if ((f.only != "zookeeper" && (f.url.empty() || f.token.empty())) ||
      (f.only != "kiln" && f.zk.empty()))
    Die("coord_http_bench: --url and --token (kiln), and --zk (ZooKeeper) are required");
  if (f.inflight < 1 || f.http_threads < 1 || f.zk_clients < 1 || f.znodes < 1 || f.seconds <= 0 ||
      f.batch < 1 || f.batch_conns < 1)
    Die("coord_http_bench: --inflight, --http-threads, --zk-clients, --znodes, --seconds, --batch "
        "and --batch-conns must be positive");
  log::SetLevel(log::Level::kWarn);
  curl_global_init(CURL_GLOBAL_DEFAULT);

  zoo_set_debug_level(ZOO_LOG_LEVEL_ERROR);

  // Workloads: {name, kiln batch size (0: one update per request), updates
  // in flight on each side}.
  struct Workload {
    std::string name;
    int batch;
    int inflight;
    int depth;  // kiln: HTTP/1.1 requests pipelined per connection (>1: zk_clients connections)
  };
  int zk_depth = std::max(1, f.inflight / f.zk_clients);
  std::vector<Workload> workloads = {
      {"set, one per request", 0, f.inflight, 1},
      {"set, pipelined", f.batch, f.batch_conns * f.batch, 1},
  };
  // One update per request, shaped as ZooKeeper's sessions are: the same
  // connections, the same requests in flight on each (raw client only).
  if (f.client == "raw")
    workloads.push_back({"set, one per request, HTTP pipelining", 0, f.inflight, zk_depth});
  std::map<std::string, std::vector<double>> kiln_rates, zk_rates;
  std::atomic<uint64_t> lost{0};
  for (int round = 0; round < f.rounds; ++round) {
    for (const Workload& w : workloads) {
      for (int b = 0; b < 2; ++b) {
        bool kiln = (b == 0) == (round % 2 == 0);
        if (f.only == (kiln ? "zookeeper" : "kiln")) continue;
        double v =
            kiln ? RunKiln(f, round, w.batch, w.depth, lost) : RunZooKeeper(f, round, w.inflight);
        (kiln ? kiln_rates : zk_rates)[w.name].push_back(v);
        fmt::print(stderr, "round {} {}: {} {:.0f}/s\n", round + 1,
                   kiln ? "kiln HTTP" : "ZooKeeper", w.name, v);
      }
    }
  }
  fmt::print(
      "coord_http_bench: {} znodes of {} bytes, {} s per run, medians of {} rounds; one per "
      "request: {} in flight (kiln: {} connections over {} threads; ZooKeeper: {} sessions x {}); "
      "pipelined: {} in flight (kiln: {} connections x batches of {}; ZooKeeper: {} sessions x "
      "{}); one per request, HTTP pipelining: kiln {} connections x {}\n",
      f.znodes, f.size, f.seconds, f.rounds, f.inflight, f.inflight, f.http_threads, f.zk_clients,
      std::max(1, f.inflight / f.zk_clients), f.batch_conns * f.batch, f.batch_conns, f.batch,
      f.zk_clients, std::max(1, f.batch_conns * f.batch / f.zk_clients), f.zk_clients, zk_depth);
  fmt::print("{:<34} {:>14} {:>14} {:>10}\n", "durable updates/s", "kiln HTTP", "zookeeper",
             "kiln/zk");
  Json j = Json::object();
  for (const Workload& w : workloads) {
    double k = Median(kiln_rates[w.name]), z = Median(zk_rates[w.name]);
    fmt::print("{:<34} {:>14.0f} {:>14.0f} {:>9.2f}x\n", w.name, k, z, k / z);
    j[w.name] = {{"kiln_http", k},
                 {"zookeeper", z},
                 {"ratio", k / z},
                 {"rounds", {{"kiln_http", kiln_rates[w.name]}, {"zookeeper", zk_rates[w.name]}}}};
  }
  j["kiln_http_unanswered"] = lost.load();
  if (lost.load() != 0)
    fmt::print("kiln HTTP: {} requests unanswered after 10 s (counted as not done)\n", lost.load());
  fmt::print("{}\n", j.dump());
  curl_global_cleanup();
  return 0;
}
