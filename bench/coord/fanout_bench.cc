// bench/coord: watch fan-out through the network APIs. N watchers of one
// znode, one write, and the time until the last watcher has the change
// (bench/coord/run --fanout starts both servers and builds this in Release).
//
//   coord_fanout_bench --url http://127.0.0.1:PORT --token TOKEN --zk HOST:PORT
//                      [--watchers 1000] [--rounds 100] [--only kiln|zookeeper]
//
// kiln: N Server-Sent Events streams (`GET /api/v1/watch?path=/bench-fanout
// &recursive=0`), each on its own connection, and a `PUT
// /api/v1/coord/data/bench-fanout` from another connection. ZooKeeper: N
// sessions, each holding a one-shot data watch on /bench-fanout (getData
// with watch=true, set again between rounds as its clients do), and a
// setData from another session. Two client threads read the watchers
// (half each, through epoll). Each write is durable before any watcher hears of it
// (kiln: its group-committed fsync; ZooKeeper: forceSync).
//
// A round starts when every watcher is armed and measures, from the moment
// the write is sent, the time to each watcher's notification; rounds
// alternate which side goes first. Reported per side: the time to the last
// watcher (p50, p99, max over the rounds) and the median of every
// notification. A watcher that hears nothing within 10 s ends the run with
// a message.

#include <sys/epoll.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "bench/coord/bench_support.h"
#include "bench/coord/raw_clients.h"
#include "common/http_client.h"
#include "common/json.h"
#include "common/log.h"

using namespace kiln;
using namespace kiln::bench;

namespace {

using Clock = std::chrono::steady_clock;

constexpr char kZnode[] = "/bench-fanout";
constexpr int32_t kOpCreate = 1;
constexpr int32_t kOpGetData = 4;
constexpr int32_t kOpSetData = 5;
constexpr int32_t kZNodeExists = -110;

struct Flags {
  std::string url, token, zk, only;
  int watchers = 1000;
  int rounds = 100;
};

struct Watcher {
  int fd = -1;
  std::string in;
  bool heard = false;
};

// One side's numbers: per round, the last watcher's time; all notifications.
struct Results {
  std::vector<double> last_ms, each_ms;
};

double Ms(Clock::duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

// Waits on the watchers of one epoll set until each has heard (read()
// true after reading), recording each one's time since t0 into out.
// `read` consumes a watcher's bytes and says whether its notification is
// among them.
template <typename Read>
void CollectPart(int ep, std::vector<Watcher*>& ws, Clock::time_point t0, Results* out,
                 const Read& read, const char* side) {
  size_t left = ws.size();
  std::vector<epoll_event> events(512);
  double last = 0;
  while (left > 0) {
    int n = ::epoll_wait(ep, events.data(), static_cast<int>(events.size()), 100);
    auto now = Clock::now();
    for (int k = 0; k < n; ++k) {
      Watcher& w = *static_cast<Watcher*>(events[k].data.ptr);
      if (!ReadSome(w.fd, &w.in)) Die(fmt::format("{}: a watcher's connection closed", side));
      if (w.heard || !read(w)) continue;
      w.heard = true;
      --left;
      double ms = Ms(now - t0);
      out->each_ms.push_back(ms);
      last = std::max(last, ms);
    }
    if (Ms(Clock::now() - t0) > 10'000)
      Die(fmt::format("{}: {} of {} watchers heard nothing within 10 s", side, left, ws.size()));
  }
  out->last_ms.push_back(last);
  for (Watcher* w : ws) w->heard = false;
}

// The watchers split between two reading threads (the client shares the
// two cores with the server: one thread reading 1,000 sockets would
// measure itself), each with its own epoll set.
struct Watchers {
  std::vector<Watcher> all;
  std::vector<Watcher*> part[2];
  int ep[2] = {-1, -1};
};

void Split(Watchers& ws) {
  for (size_t i = 0; i < ws.all.size(); ++i) ws.part[i % 2].push_back(&ws.all[i]);
  for (int p = 0; p < 2; ++p) {
    ws.ep[p] = ::epoll_create1(EPOLL_CLOEXEC);
    for (Watcher* w : ws.part[p]) {
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.ptr = w;
      ::epoll_ctl(ws.ep[p], EPOLL_CTL_ADD, w->fd, &ev);
    }
  }
}

// Every watcher's notification; out gets each one's time and the last.
template <typename Read>
void Collect(Watchers& ws, Clock::time_point t0, Results* out, const Read& read, const char* side) {
  Results r[2];
  std::thread other([&] { CollectPart(ws.ep[1], ws.part[1], t0, &r[1], read, side); });
  CollectPart(ws.ep[0], ws.part[0], t0, &r[0], read, side);
  other.join();
  for (const Results& x : r)
    out->each_ms.insert(out->each_ms.end(), x.each_ms.begin(), x.each_ms.end());
  out->last_ms.push_back(std::max(r[0].last_ms.back(), r[1].last_ms.back()));
}

void SendAll(int fd, const std::string& out, const char* what) {
  size_t sent = 0;
  while (sent < out.size())
    if (!WriteSome(fd, out, &sent)) Die(fmt::format("{}: connection closed", what));
}

// ---- kiln: Server-Sent Events ----------------------------------------------------

class KilnSide {
 public:
  KilnSide(const Flags& f) : target_(ParseHttpUrl(f.url, f.token)) {
    HttpClient c(f.url, f.token);
    auto r = c.Do("POST", std::string("/api/v1/coord/data") + kZnode, "{}",
                  {.content_type = "application/json"});
    if (!r.ok()) Die("kiln: " + r.status().ToString());
    if (r->status != 201 && r->status != 409)
      Die(fmt::format("kiln: creating {}: HTTP {}: {}", kZnode, r->status, r->body));
    std::string get = fmt::format(
        "GET /api/v1/watch?path={}&recursive=0 HTTP/1.1\r\nHost: {}:{}\r\nAuthorization: Bearer "
        "{}\r\nAccept: text/event-stream\r\n\r\n",
        kZnode, target_.host, target_.port, target_.token);
    ws_.all.resize(static_cast<size_t>(f.watchers));
    for (Watcher& w : ws_.all) {
      w.fd = Connect(target_.host, target_.port);
      SendAll(w.fd, get, "kiln watch");
    }
    // Armed once the stream's opening comment has arrived: the server
    // registers the watch before it writes it.
    Split(ws_);
    Results ignored;
    Collect(
        ws_, Clock::now(), &ignored, [](Watcher& w) { return Opened(w); },
        "kiln (opening the streams)");
    writer_ = Connect(target_.host, target_.port);
  }

  void Round(int round, Results* out) {
    std::string body = fmt::format("{{\"data\":\"round {}\"}}", round);
    std::string put = fmt::format(
        "PUT /api/v1/coord/data{} HTTP/1.1\r\nHost: {}:{}\r\nAuthorization: Bearer {}\r\n"
        "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{}",
        kZnode, target_.host, target_.port, target_.token, body.size(), body);
    auto t0 = Clock::now();
    SendAll(writer_, put, "kiln write");
    Collect(
        ws_, t0, out, [](Watcher& w) { return Heard(w); }, "kiln");
    // The write's own answer (it came before or with the events).
    std::string answer;
    while (answer.find("\r\n\r\n") == std::string::npos || answer.find('}') == std::string::npos)
      if (!ReadSome(writer_, &answer)) Die("kiln: the writer's connection closed");
    if (answer.rfind("HTTP/1.1 200", 0) != 0) Die("kiln: the write failed: " + answer);
  }

 private:
  static bool Opened(Watcher& w) {
    if (w.in.find(": kiln watch stream") == std::string::npos) return false;
    if (w.in.rfind("HTTP/1.1 200", 0) != 0) Die("kiln: a watch was refused: " + w.in);
    w.in.clear();
    return true;
  }
  // An event, whole: its data line ends with a newline.
  static bool Heard(Watcher& w) {
    size_t at = w.in.find("event: changed");
    if (at == std::string::npos || w.in.find("}\n", at) == std::string::npos) return false;
    w.in.clear();
    return true;
  }

  HttpTarget target_;
  Watchers ws_;
  int writer_ = -1;
};

// ---- ZooKeeper: one-shot data watches --------------------------------------------

class ZkSide {
 public:
  explicit ZkSide(const Flags& f) {
    size_t colon = f.zk.rfind(':');
    if (colon == std::string::npos) Die("--zk takes HOST:PORT, not " + f.zk);
    std::string host = f.zk.substr(0, colon);
    int port = std::atoi(f.zk.c_str() + colon + 1);
    writer_ = Connect(host, port);
    ZkHandshake(writer_);
    std::string create;
    Frame(&create, kOpCreate, [&](std::string* b) {
      PutBytes(b, kZnode);
      PutBytes(b, "");
      PutInt(b, 1);  // one ACL: world:anyone, all permissions
      PutInt(b, 31);
      PutBytes(b, "world");
      PutBytes(b, "anyone");
      PutInt(b, 0);  // persistent
    });
    SendAll(writer_, create, "zookeeper create");
    int32_t err = ReadReply(writer_);
    if (err != 0 && err != kZNodeExists) Die(fmt::format("zookeeper: create failed: {}", err));
    ws_.all.resize(static_cast<size_t>(f.watchers));
    for (Watcher& w : ws_.all) {
      w.fd = Connect(host, port);
      ZkHandshake(w.fd);
    }
    Split(ws_);
  }

  void Round(int round, Results* out) {
    Arm();
    std::string set;
    Frame(&set, kOpSetData, [&](std::string* b) {
      PutBytes(b, kZnode);
      PutBytes(b, fmt::format("round {}", round));
      PutInt(b, -1);  // any version
    });
    auto t0 = Clock::now();
    SendAll(writer_, set, "zookeeper setData");
    Collect(
        ws_, t0, out, [](Watcher& w) { return Notified(w); }, "zookeeper");
    if (int32_t err = ReadReply(writer_); err != 0)
      Die(fmt::format("zookeeper: setData failed: {}", err));
  }

 private:
  // A request frame: length, xid, op, then the body.
  template <typename Body>
  void Frame(std::string* out, int32_t op, const Body& body) {
    std::string b;
    PutInt(&b, ++xid_);
    PutInt(&b, op);
    body(&b);
    PutInt(out, static_cast<int32_t>(b.size()));
    *out += b;
  }

  // Every watcher sends getData(watch=true) and waits for its answer, so
  // that each holds a watch when the round's write comes.
  void Arm() {
    std::string get;
    Frame(&get, kOpGetData, [](std::string* b) {
      PutBytes(b, kZnode);
      b->push_back('\1');  // watch
    });
    for (Watcher& w : ws_.all) SendAll(w.fd, get, "zookeeper getData");
    Results ignored;
    Collect(
        ws_, Clock::now(), &ignored, [](Watcher& w) { return Answered(w); },
        "zookeeper (setting the watches)");
  }

  // Consumes whole frames; true when one is the reply to a request
  // (xid > 0), or, for Notified, a watch event (xid -1).
  static bool Consume(Watcher& w, bool want_event) {
    bool found = false;
    size_t at = 0;
    while (w.in.size() - at >= 4) {
      auto len = static_cast<size_t>(GetInt(w.in.data() + at));
      if (w.in.size() - at - 4 < len) break;
      int32_t xid = GetInt(w.in.data() + at + 4);
      if (want_event ? xid == -1 : xid > 0) {
        if (!want_event && GetInt(w.in.data() + at + 16) != 0)
          Die(fmt::format("zookeeper: getData failed: {}", GetInt(w.in.data() + at + 16)));
        found = true;
      }
      at += 4 + len;
    }
    w.in.erase(0, at);
    return found;
  }
  static bool Answered(Watcher& w) { return Consume(w, false); }
  static bool Notified(Watcher& w) { return Consume(w, true); }

  // The writer's next reply (blocking): its error code.
  int32_t ReadReply(int fd) {
    std::string in;
    for (;;) {
      if (in.size() >= 4) {
        auto len = static_cast<size_t>(GetInt(in.data()));
        if (in.size() - 4 >= len) return GetInt(in.data() + 16);
      }
      if (!ReadSome(fd, &in)) Die("zookeeper: the writer's session closed");
    }
  }

  Watchers ws_;
  int writer_ = -1;
  int32_t xid_ = 0;
};

}  // namespace

int main(int argc, char** argv) {
  Flags f;
  for (FlagReader r("coord_fanout_bench", argc, argv); r.Next();) {
    const std::string& a = r.flag();
    if (a == "--url")
      f.url = r.Value();
    else if (a == "--token")
      f.token = r.Value();
    else if (a == "--zk")
      f.zk = r.Value();
    else if (a == "--watchers")
      f.watchers = std::stoi(r.Value());
    else if (a == "--rounds")
      f.rounds = std::stoi(r.Value());
    else if (a == "--only")
      f.only = r.Value();
    else
      Die("coord_fanout_bench: unknown argument " + a +
          " (see the top of bench/coord/fanout_bench.cc)");
  }
  if (f.only != "" && f.only != "kiln" && f.only != "zookeeper")
    Die("coord_fanout_bench: --only takes kiln or zookeeper, not " + f.only);
  if ((f.only != "zookeeper" && (f.url.empty() || f.token.empty())) ||
      (f.only != "kiln" && f.zk.empty()))
    Die("coord_fanout_bench: --url and --token (kiln), and --zk (ZooKeeper) are required");
  if (f.watchers < 1 || f.rounds < 1)
    Die("coord_fanout_bench: --watchers and --rounds must be positive");
  // Two sockets per watcher on our side (the servers hold the others).
  rlimit nofile{};
  ::getrlimit(RLIMIT_NOFILE, &nofile);
  nofile.rlim_cur = nofile.rlim_max;
  ::setrlimit(RLIMIT_NOFILE, &nofile);
  if (nofile.rlim_cur < static_cast<rlim_t>(2 * f.watchers + 64))
    Die(fmt::format("coord_fanout_bench: {} watchers need {} open files; the limit is {}",
                    f.watchers, 2 * f.watchers + 64, nofile.rlim_cur));
  log::SetLevel(log::Level::kWarn);

  std::unique_ptr<KilnSide> kiln;
  std::unique_ptr<ZkSide> zk;
  if (f.only != "zookeeper") kiln = std::make_unique<KilnSide>(f);
  if (f.only != "kiln") zk = std::make_unique<ZkSide>(f);
  Results k, z;
  for (int r = 0; r < f.rounds; ++r) {
    for (int b = 0; b < 2; ++b) {
      bool kiln_turn = (b == 0) == (r % 2 == 0);
      if (kiln_turn && kiln) kiln->Round(r, &k);
      if (!kiln_turn && zk) zk->Round(r, &z);
    }
  }
  fmt::print(
      "coord_fanout_bench: {} watchers of one znode, {} rounds (kiln: one SSE stream each; "
      "ZooKeeper: one session each); ms from sending a write to the watchers' notifications\n",
      f.watchers, f.rounds);
  fmt::print("{:<34} {:>10} {:>10} {:>10}\n", "", "kiln HTTP", "zookeeper", "kiln/zk");
  Json j = Json::object();
  auto row = [&](const char* name, double kv, double zv) {
    fmt::print("{:<34} {:>10.2f} {:>10.2f} {:>9.2f}x\n", name, kv, zv, zv > 0 ? kv / zv : 0);
    j[name] = {{"kiln_http", kv}, {"zookeeper", zv}};
  };
  row("last watcher, p50", Percentile(k.last_ms, 0.5), Percentile(z.last_ms, 0.5));
  row("last watcher, p99", Percentile(k.last_ms, 0.99), Percentile(z.last_ms, 0.99));
  row("last watcher, max", Percentile(k.last_ms, 1.0), Percentile(z.last_ms, 1.0));
  row("every notification, p50", Percentile(k.each_ms, 0.5), Percentile(z.each_ms, 0.5));
  j["rounds"] = {{"kiln_http", k.last_ms}, {"zookeeper", z.last_ms}};
  fmt::print("{}\n", j.dump());
  return 0;
}
