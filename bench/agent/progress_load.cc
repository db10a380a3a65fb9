// Simulated agents against one `kiln serve`: each reports one progress event
// every --interval-ms for --seconds, through the same API as kiln-agent
// (POST /api/v1/nodes/<id>/events with its own node token). Afterwards every
// node's stored events are read back and checked: all there, in order.
//
//   agent_progress_bench --server URL --token ADMIN [--agents 1000]
//       [--interval-ms 100] [--seconds 60] [--threads 8] [--pid SERVER_PID]
//
// Prints one JSON object: events sent and stored, achieved rate, report
// latency percentiles and (with --pid) the server's CPU seconds.

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/api_client.h"
#include "common/file_util.h"
#include "common/json.h"
#include "common/strings.h"

using namespace kiln;
using Clock = std::chrono::steady_clock;

namespace {

struct Options {
  std::string server, token;
  int agents = 1000, interval_ms = 100, seconds = 60, threads = 8;
  int pid = 0;
};

double CpuSeconds(int pid) {
  auto stat = ReadFile(fmt::format("/proc/{}/stat", pid));
  if (!stat.ok()) return 0;
  auto fields = Split(stat->substr(stat->rfind(')') + 2), ' ');
  // utime and stime are fields 14 and 15 (1-based), 12 and 13 after the name.
  return double(ParseUint(fields[11]).value_or(0) + ParseUint(fields[12]).value_or(0)) /
         double(::sysconf(_SC_CLK_TCK));
}

struct Agent {
  std::string id, token;
  uint64_t seq = 0;
  Clock::time_point due;
};

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    if (k == "--server")
      o.server = v;
    else if (k == "--token")
      o.token = v;
    else if (k == "--agents")
      o.agents = std::stoi(v);
    else if (k == "--interval-ms")
      o.interval_ms = std::stoi(v);
    else if (k == "--seconds")
      o.seconds = std::stoi(v);
    else if (k == "--threads")
      o.threads = std::stoi(v);
    else if (k == "--pid")
      o.pid = std::stoi(v);
    else {
      fmt::print(stderr, "agent_progress_bench: unknown flag {}\n", k);
      return 2;
    }
  }
  if (o.server.empty() || o.token.empty()) {
    fmt::print(stderr, "usage: agent_progress_bench --server URL --token ADMIN_TOKEN [...]\n");
    return 2;
  }

  // Nodes, each with its own node token (enrolled like a booting machine).
  ApiClient admin(ClientConfig{o.server, o.token});
  ApiClient anon(ClientConfig{o.server, ""});
  std::vector<Agent> agents(static_cast<size_t>(o.agents));
  for (int i = 0; i < o.agents; ++i) {
    Agent& a = agents[size_t(i)];
    a.id = fmt::format("sim{:04d}", i);
    std::string mac = fmt::format("02:00:00:00:{:02x}:{:02x}", i >> 8, i & 255);
    (void)admin.Delete("/api/v1/nodes/" + a.id);
    auto n =
        admin.Post("/api/v1/nodes", Json{{"name", a.id}, {"macs", {mac}}, {"boot", "install"}});
    if (!n.ok()) {
      fmt::print(stderr, "adding {}: {}\n", a.id, n.status().ToString());
      return 1;
    }
    // The enrollment token reaches a machine on its kernel command line;
    // the bench reads it from the iPXE script the same way.
    auto script = anon.http().Do("GET", "/boot/ipxe?mac=" + mac);
    size_t at = script.ok() ? script->body.find("kiln.token=") : std::string::npos;
    if (at == std::string::npos) {
      fmt::print(stderr, "no enrollment token for {}\n", a.id);
      return 1;
    }
    auto e = anon.Post("/api/v1/enroll", Json{{"token", script->body.substr(at + 11, 32)}});
    if (!e.ok()) {
      fmt::print(stderr, "enrolling {}: {}\n", a.id, e.status().ToString());
      return 1;
    }
    a.token = (*e)["token"];
  }

  double cpu0 = o.pid ? CpuSeconds(o.pid) : 0;
  auto start = Clock::now();
  auto end = start + std::chrono::seconds(o.seconds);
  auto interval = std::chrono::milliseconds(o.interval_ms);
  for (size_t i = 0; i < agents.size(); ++i)
    agents[i].due = start + interval * static_cast<long>(i) / static_cast<long>(agents.size());
  std::mutex mu;
  std::vector<double> latencies;
  std::atomic<uint64_t> sent{0}, errors{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < o.threads; ++t) {
    threads.emplace_back([&, t] {
      HttpClient http(o.server, "");
      std::vector<double> mine;
      std::vector<Agent*> own;
      for (size_t i = size_t(t); i < agents.size(); i += size_t(o.threads))
        own.push_back(&agents[i]);
      for (;;) {
        auto next = std::min_element(own.begin(), own.end(),
                                     [](Agent* a, Agent* b) { return a->due < b->due; });
        Agent* a = *next;
        if (a->due >= end) break;
        std::this_thread::sleep_until(a->due);
        uint64_t seq = a->seq + 1;
        Json body = {{"run", "bench"},
                     {"events", Json::array({Json{{"seq", seq},
                                                  {"kind", "progress"},
                                                  {"phase", "image"},
                                                  {"step", "stream"},
                                                  {"done", seq * 1000},
                                                  {"total", 1u << 30}}})}};
        http.set_token(a->token);
        auto t0 = Clock::now();
        auto r = http.Do("POST", "/api/v1/nodes/" + a->id + "/events", body.dump(),
                         {.content_type = "application/json"});
        mine.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
        if (r.ok() && r->status == 200) {
          a->seq = seq;
          ++sent;
        } else {
          ++errors;  // resent at the next tick with the same seq, as the agent does
        }
        a->due += interval;
      }
      std::lock_guard lock(mu);
      latencies.insert(latencies.end(), mine.begin(), mine.end());
    });
  }
  for (auto& th : threads) th.join();
  double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  double cpu = o.pid ? CpuSeconds(o.pid) - cpu0 : 0;

  // Every node's story, read back: complete and in order.
  uint64_t stored = 0, out_of_order = 0, missing = 0;
  for (const Agent& a : agents) {
    auto ev = admin.Get("/api/v1/nodes/" + a.id + "/events?limit=100000");
    if (!ev.ok()) {
      missing += a.seq;
      continue;
    }
    uint64_t expect = 0;
    for (const Json& e : (*ev)["events"]) {
      uint64_t seq = e["event"]["seq"];
      if (seq != expect + 1) ++out_of_order;
      expect = seq;
      ++stored;
    }
    if (expect < a.seq) missing += a.seq - expect;
  }
  std::sort(latencies.begin(), latencies.end());
  auto pct = [&](double p) {
    return latencies.empty()
               ? 0.0
               : latencies[std::min(latencies.size() - 1, size_t(p * double(latencies.size())))];
  };
  Json out = {
      {"agents", o.agents},
      {"interval_ms", o.interval_ms},
      {"seconds", elapsed},
      {"target_rate", double(o.agents) * 1000.0 / o.interval_ms},
      {"events_acked", sent.load()},
      {"errors", errors.load()},
      {"events_stored", stored},
      {"missing", missing},
      {"out_of_order", out_of_order},
      {"rate", double(sent.load()) / elapsed},
      {"latency_ms", {{"p50", pct(0.5)}, {"p90", pct(0.9)}, {"p99", pct(0.99)}, {"max", pct(1.0)}}},
      {"server_cpu_s", cpu},
      {"server_cpu_per_1k_events_ms", sent ? cpu * 1e6 / double(sent.load()) : 0}};
  fmt::print("{}\n", out.dump(2));
  return missing == 0 && out_of_order == 0 ? 0 : 1;
}
