// Crash safety of the embedded coordination store, end to end: writers
// hammer a real `kiln serve` over HTTP, the server is killed with SIGKILL
// at a random moment, restarted on the same data directory, and every
// write the server acknowledged must be there. Many rounds, each with a
// different kill moment (a fixed seed keeps the run reproducible).

#include <signal.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <random>
#include <set>
#include <thread>

#include "common/http_client.h"
#include "common/json.h"
#include "tests/support/kiln_server.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"

using namespace kiln;
using namespace kiln::test;
using namespace std::chrono_literals;

namespace {

struct Writer {
  int id = 0;
  // Highest sequence number whose create and counter update were both
  // acknowledged.
  std::atomic<int64_t> acked{-1};
};

// Writes /crash/w<id>/<n> and sets /crash/w<id> to n, one after the other,
// until the server goes away.
void WriteUntilDead(const std::string& url, const std::string& token, Writer* w, int64_t start) {
  HttpClient http(url, token);
  HttpRequestOptions opts;
  opts.content_type = "application/json";
  opts.timeout = 10s;
  std::string base = "/api/v1/coord/data/crash/w" + std::to_string(w->id);
  for (int64_t n = start;; ++n) {
    Json create = {{"data", std::to_string(n)}};
    auto r = http.Do("POST", base + "/" + std::to_string(n), create.dump(), opts);
    if (!r.ok() || r->status != 201) return;
    Json set = {{"data", std::to_string(n)}};
    auto s = http.Do("PUT", base, set.dump(), opts);
    if (!s.ok() || s->status != 200) return;
    w->acked = n;
  }
}

}  // namespace

TEST_CASE("SIGKILL under write load loses no acknowledged update", "[crash]") {
  TempDir tmp;
  std::string data = tmp.Sub("data");
  std::mt19937 rng(20261126);
  constexpr int kWriters = 4;
  constexpr int kRounds = 8;
  std::vector<int64_t> next(kWriters, 0);

  {
    KilnServer setup(data, {});
    auto api = setup.Client();
    REQUIRE(api.Post("/api/v1/coord/data/crash", Json::object()).ok());
    for (int w = 0; w < kWriters; ++w)
      REQUIRE(api.Post("/api/v1/coord/data/crash/w" + std::to_string(w), {{"data", "-1"}}).ok());
    setup.Stop();
  }

  for (int round = 0; round < kRounds; ++round) {
    INFO("round " << round);
    KilnServer server(data, {});
    // After the previous crash: everything acknowledged is still there.
    auto api = server.Client();
    std::vector<int64_t> start(kWriters, 0);
    for (int w = 0; w < kWriters; ++w) {
      auto counter = api.Get("/api/v1/coord/data/crash/w" + std::to_string(w));
      REQUIRE(counter.ok());
      int64_t value = std::stoll((*counter)["data"].get<std::string>());
      CHECK(value >= next[w] - 1);
      auto kids = api.Get("/api/v1/coord/children/crash/w" + std::to_string(w));
      REQUIRE(kids.ok());
      std::set<std::string> names;
      for (const auto& k : (*kids)["children"]) names.insert(k.get<std::string>());
      // Creates 0..k exist without a gap; every acknowledged one among them.
      int64_t k = 0;
      while (names.count(std::to_string(k))) ++k;
      CHECK(names.size() == static_cast<size_t>(k));
      CHECK(k >= next[w]);
      start[w] = k;
    }
    std::vector<Writer> writers(kWriters);
    std::vector<std::thread> threads;
    for (int w = 0; w < kWriters; ++w) {
      writers[w].id = w;
      threads.emplace_back(WriteUntilDead, server.url(), server.token(), &writers[w], start[w]);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50 + rng() % 400));
    server.process().Signal(SIGKILL);
    server.process().Wait();
    for (auto& t : threads) t.join();
    for (int w = 0; w < kWriters; ++w)
      if (writers[w].acked >= 0) next[w] = writers[w].acked + 1;
  }

  // The rounds did write (each writer got acknowledgements in most rounds).
  for (int w = 0; w < kWriters; ++w) CHECK(next[w] > kRounds);

  // Final check after the last crash, including the counters' exact floor.
  KilnServer last(data, {});
  auto api = last.Client();
  for (int w = 0; w < kWriters; ++w) {
    auto counter = api.Get("/api/v1/coord/data/crash/w" + std::to_string(w));
    REQUIRE(counter.ok());
    CHECK(std::stoll((*counter)["data"].get<std::string>()) >= next[w] - 1);
    auto kids = api.Get("/api/v1/coord/children/crash/w" + std::to_string(w));
    REQUIRE(kids.ok());
    std::set<std::string> names;
    for (const auto& k : (*kids)["children"]) names.insert(k.get<std::string>());
    for (int64_t n = 0; n < next[w]; ++n) {
      INFO("writer " << w << " create " << n);
      CHECK(names.count(std::to_string(n)) == 1);
    }
  }
}

TEST_CASE("many concurrent clients: every set is answered, and durable across SIGKILL", "[crash]") {
  // Each client owns one znode and sets it with the version it expects, so
  // every update must apply exactly once and in order. Half the clients go
  // one PUT per update, half send batches of three; all run at once, so
  // group commits mix them. Every request must be answered (the client's
  // timeout only detects a hang); after SIGKILL and a restart every
  // acknowledged update is there.
  TempDir tmp;
  std::string data = tmp.Sub("data");
  constexpr int kClients = 40;
  constexpr int kUpdates = 30;  // per client; a multiple of 3
  std::vector<std::string> errors(kClients);
  {
    KilnServer server(data, {});
    auto api = server.Client();
    REQUIRE(api.Post("/api/v1/coord/data/many", Json::object()).ok());
    std::vector<std::thread> clients;
    for (int c = 0; c < kClients; ++c)
      clients.emplace_back([&, c] {
        HttpClient http(server.url(), server.token());
        HttpRequestOptions opts{.content_type = "application/json", .timeout = 60s};
        std::string path = "/many/c" + std::to_string(c);
        auto fail = [&](const std::string& what, const Result<HttpReply>& r) {
          errors[c] = what + ": " +
                      (r.ok() ? std::to_string(r->status) + " " + r->body : r.status().ToString());
        };
        auto r = http.Do("POST", "/api/v1/coord/data" + path, R"({"data":"0"})", opts);
        if (!r.ok() || r->status != 201) return fail("create " + path, r);
        for (int v = 0; v < kUpdates;) {
          if (c % 2 == 0) {
            Json body = {{"data", std::to_string(v + 1)}, {"version", v}};
            r = http.Do("PUT", "/api/v1/coord/data" + path, body.dump(), opts);
            if (!r.ok() || r->status != 200) return fail("set " + path, r);
            ++v;
            continue;
          }
          Json ops = Json::array();
          for (int k = 0; k < 3; ++k)
            ops.push_back({{"op", "set"},
                           {"path", path},
                           {"data", std::to_string(v + k + 1)},
                           {"version", v + k}});
          r = http.Do("POST", "/api/v1/coord/batch", Json{{"ops", ops}}.dump(), opts);
          if (!r.ok() || r->status != 200) return fail("batch " + path, r);
          auto results = ParseJson(r->body);
          if (!results.ok() || (*results)["results"].size() != 3) return fail("batch " + path, r);
          for (int k = 0; k < 3; ++k)
            if ((*results)["results"][k]["stat"]["version"] != v + k + 1)
              return fail("batch result " + std::to_string(k), r);
          v += 3;
        }
      });
    for (auto& t : clients) t.join();
    for (int c = 0; c < kClients; ++c) {
      INFO("client " << c);
      CHECK(errors[c] == "");
    }
    server.process().Signal(SIGKILL);
    server.process().Wait();
  }
  KilnServer again(data, {});
  auto api = again.Client();
  for (int c = 0; c < kClients; ++c) {
    INFO("client " << c);
    auto got = api.Get("/api/v1/coord/data/many/c" + std::to_string(c));
    REQUIRE(got.ok());
    CHECK((*got)["data"] == std::to_string(kUpdates));
    CHECK((*got)["stat"]["version"] == kUpdates);
  }
}
