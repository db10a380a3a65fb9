// Long polls on the jobs API, over HTTP against a real `kiln serve`: an
// agent asking for queued jobs is answered the moment one is queued, a CLI
// waiting for a verdict the moment it is given; a poll with nothing to say
// ends empty at its timeout; bad wait values are a clear 400.

#include <catch2/catch.hpp>
#include <future>
#include <thread>

#include "common/http_client.h"
#include "common/json.h"
#include "tests/support/kiln_server.h"
#include "tests/support/process.h"

using namespace kiln;
using namespace kiln::test;

namespace {

// The server's count of requests whose answer is being held.
double Pending(const KilnServer& server) {
  HttpClient c(server.url(), "");
  auto m = c.Do("GET", "/metrics");
  if (!m.ok()) return -1;
  const std::string key = "\nkiln_http_pending_requests ";
  size_t at = m->body.find(key);
  return at == std::string::npos ? -1 : std::stod(m->body.substr(at + key.size()));
}

// A GET in a thread of its own, with its own connection.
std::future<Result<HttpReply>> GetLater(const KilnServer& server, std::string path) {
  return std::async(std::launch::async, [url = server.url(), tok = server.token(), path] {
    HttpClient c(url, tok);
    return c.Do("GET", path, {}, {.timeout = std::chrono::seconds(90)});
  });
}

Json Queue(KilnServer& server, const std::string& node) {
  auto j = server.Client().Post("/api/v1/nodes/" + node + "/jobs",
                                Json{{"kind", "run"}, {"args", {{"command", "true"}}}});
  REQUIRE(j.ok());
  return *j;
}

bool Ready(std::future<Result<HttpReply>>& f) {
  return f.wait_for(std::chrono::seconds(0)) == std::future_status::ready;
}

}  // namespace

TEST_CASE("GET jobs?wait=S answers as soon as a job is queued") {
  KilnServer server;
  REQUIRE(server.Kiln({"node", "add", "h1", "--mac", "52:54:00:00:09:01"}).exit_code == 0);
  // A wait of 60 s: an answer within WaitUntil's 20 s came from the queueing.
  auto poll = GetLater(server, "/api/v1/nodes/h1/jobs?state=queued&wait=60");
  REQUIRE(WaitUntil([&] { return Pending(server) >= 1; }));
  CHECK(!Ready(poll));
  Json job = Queue(server, "h1");
  REQUIRE(WaitUntil([&] { return Ready(poll); }));
  auto r = poll.get();
  REQUIRE(r.ok());
  REQUIRE(r->status == 200);
  Json j = ParseJson(r->body).value();
  CHECK(j["wait_s"] == 60.0);
  REQUIRE(j["jobs"].size() == 1);
  CHECK(j["jobs"][0]["id"] == job["id"]);
  CHECK(j["jobs"][0]["state"] == "queued");
  // With a job queued already, the answer is immediate.
  auto again = server.Client().Get("/api/v1/nodes/h1/jobs?state=queued&wait=60");
  REQUIRE(again.ok());
  CHECK((*again)["jobs"].size() == 1);
  CHECK(Pending(server) == 0);
}

TEST_CASE("GET jobs?wait=S with nothing queued answers an empty list when S runs out") {
  KilnServer server;
  REQUIRE(server.Kiln({"node", "add", "h1", "--mac", "52:54:00:00:09:01"}).exit_code == 0);
  auto r = server.Client().Get("/api/v1/nodes/h1/jobs?state=queued&wait=0.2");
  REQUIRE(r.ok());
  CHECK((*r)["jobs"] == Json::array());
  CHECK((*r)["wait_s"] == 0.2);
  // A job in another state does not end a wait for queued ones.
  Json job = Queue(server, "h1");
  auto api = server.Client();
  REQUIRE(
      api.Put("/api/v1/nodes/h1/jobs/" + job["id"].get<std::string>(), Json{{"state", "running"}})
          .ok());
  auto none = api.Get("/api/v1/nodes/h1/jobs?state=queued&wait=0.2");
  REQUIRE(none.ok());
  CHECK((*none)["jobs"] == Json::array());
  // Without wait: the plain list, at once, no wait_s.
  auto plain = api.Get("/api/v1/nodes/h1/jobs");
  REQUIRE(plain.ok());
  CHECK((*plain)["jobs"].size() == 1);
  CHECK(!plain->contains("wait_s"));
}

TEST_CASE("GET jobs/ID?wait=S answers when the job is done, or as it is when S runs out") {
  KilnServer server;
  REQUIRE(server.Kiln({"node", "add", "h1", "--mac", "52:54:00:00:09:01"}).exit_code == 0);
  Json job = Queue(server, "h1");
  std::string path = "/api/v1/nodes/h1/jobs/" + job["id"].get<std::string>();
  auto api = server.Client();
  // Still queued when the wait runs out: the job as it is.
  auto early = api.Get(path + "?wait=0.1");
  REQUIRE(early.ok());
  CHECK((*early)["state"] == "queued");

  auto verdict = GetLater(server, path + "?wait=60");
  REQUIRE(WaitUntil([&] { return Pending(server) >= 1; }));
  // Taking the job is not the verdict: the wait goes on.
  REQUIRE(api.Put(path, Json{{"state", "running"}}).ok());
  REQUIRE(WaitUntil([&] { return Pending(server) >= 1; }));
  CHECK(!Ready(verdict));
  REQUIRE(api.Put(path, Json{{"state", "done"}, {"exit_code", 0}, {"message", "ok"}}).ok());
  REQUIRE(WaitUntil([&] { return Ready(verdict); }));
  auto r = verdict.get();
  REQUIRE(r.ok());
  REQUIRE(r->status == 200);
  Json j = ParseJson(r->body).value();
  CHECK(j["state"] == "done");
  CHECK(j["message"] == "ok");
  CHECK(j["id"] == job["id"]);

  // An unknown job is a 404 at once, wait or not.
  HttpClient c(server.url(), server.token());
  auto missing = c.Do("GET", "/api/v1/nodes/h1/jobs/j-0000009999?wait=60");
  REQUIRE(missing.ok());
  CHECK(missing->status == 404);
}

TEST_CASE("bad wait and state values are a 400 naming the parameter") {
  KilnServer server;
  REQUIRE(server.Kiln({"node", "add", "h1", "--mac", "52:54:00:00:09:01"}).exit_code == 0);
  Json job = Queue(server, "h1");
  HttpClient c(server.url(), server.token());
  for (const std::string& base : {std::string("/api/v1/nodes/h1/jobs?"),
                                  "/api/v1/nodes/h1/jobs/" + job["id"].get<std::string>() + "?"}) {
    for (const char* bad : {"-1", "61", "abc", "1e3", "inf", "3600"}) {
      auto r = c.Do("GET", base + "wait=" + bad);
      REQUIRE(r.ok());
      INFO(base << bad);
      CHECK(r->status == 400);
      CHECK(ParseJson(r->body).value()["error"]["message"] ==
            std::string("wait: expected seconds from 0 to 60, got \"") + bad + "\"");
    }
  }
  auto r = c.Do("GET", "/api/v1/nodes/h1/jobs?state=later&wait=1");
  REQUIRE(r.ok());
  CHECK(r->status == 400);
  CHECK(ParseJson(r->body).value()["error"]["message"] ==
        "state: expected queued, running, done or failed, got \"later\"");
  // An unknown node: 404 at once.
  auto other = c.Do("GET", "/api/v1/nodes/nobody/jobs?wait=1");
  REQUIRE(other.ok());
  CHECK(other->status == 404);
  CHECK(Pending(server) == 0);
}
