// The agent API (events, sessions, facts, log) through HTTP against a real
// `kiln serve`: ordering and dedupe of events, bad batches, and an agent
// that stops heartbeating mid-install leaving its node lost.

#include <catch2/catch.hpp>

#include "common/http_client.h"
#include "common/json.h"
#include "tests/support/kiln_server.h"
#include "tests/support/process.h"

using namespace kiln;
using namespace kiln::test;

namespace {

struct Api {
  KilnServer server;
  HttpClient http{server.url(), server.token()};

  Api() {
    REQUIRE(server.Kiln({"node", "add", "n1", "--mac", "52:54:00:00:00:11"}).exit_code == 0);
  }

  HttpReply Call(const std::string& method, const std::string& path, const Json& body = nullptr) {
    auto r = http.Do(method, path, body.is_null() ? "" : body.dump(),
                     {.content_type = "application/json"});
    REQUIRE(r.ok());
    return *r;
  }
  Json Events() { return ParseJson(Call("GET", "/api/v1/nodes/n1/events").body)->at("events"); }
  std::string State() { return ParseJson(Call("GET", "/api/v1/nodes/n1").body)->at("state"); }
};

Json Event(uint64_t seq, const std::string& kind = "log", const std::string& msg = "") {
  Json e = {
      {"seq", seq}, {"kind", kind}, {"message", msg.empty() ? "e" + std::to_string(seq) : msg}};
  if (kind == "phase") e["phase"] = "image";
  return e;
}

Json Batch(const std::string& run, std::vector<Json> events) {
  return {{"run", run}, {"events", events}};
}

}  // namespace

TEST_CASE(
    "events: resent and overlapping batches store each event once and in order, a gap is refused") {
  Api a;
  auto r = a.Call("POST", "/api/v1/nodes/n1/events",
                  Batch("r1", {Event(1, "phase"), Event(2), Event(3)}));
  REQUIRE(r.status == 200);
  CHECK(ParseJson(r.body)->at("acked") == 3);
  CHECK(a.State() == "installing");
  // The agent did not see the answer and resends, with more.
  r = a.Call("POST", "/api/v1/nodes/n1/events",
             Batch("r1", {Event(2), Event(3), Event(4), Event(5)}));
  CHECK(ParseJson(r.body)->at("acked") == 5);
  CHECK(ParseJson(r.body)->at("added") == 2);
  // A gap: 7 without 6.
  r = a.Call("POST", "/api/v1/nodes/n1/events", Batch("r1", {Event(7)}));
  CHECK(r.status == 412);
  Json ev = a.Events();
  REQUIRE(ev.size() == 5);
  for (size_t i = 0; i < ev.size(); ++i) CHECK(ev[i]["event"]["seq"] == i + 1);
  // A new run starts over at 1 and keeps the history.
  r = a.Call("POST", "/api/v1/nodes/n1/events", Batch("r2", {Event(1, "phase")}));
  CHECK(r.status == 200);
  CHECK(a.Events().size() == 6);
  Json progress = ParseJson(a.Call("GET", "/api/v1/nodes/n1/progress").body).value();
  CHECK(progress["run"] == "r2");
}

TEST_CASE("bad event batches and facts are refused with what was wrong") {
  Api a;
  struct Case {
    Json body;
    std::string want;
  } cases[] = {
      {Json{{"events", Json::array()}}, "run"},
      {Batch("bad run!", {Event(1)}), "run: 1-64 letters"},
      {Batch("r", {Json{{"kind", "log"}}}), "events[0].seq: expected a number from 1"},
      {Batch("r", {Event(2), Event(1)}), "events[1].seq: 1 does not follow 2"},
      {Batch("r", {Json{{"seq", 1}, {"kind", "dance"}}}), "is not phase, progress, log or result"},
      {Batch("r", {Json{{"seq", 1}, {"kind", "log"}, {"level", "loud"}}}), "events[0].level"},
      {Json{{"run", "r"}, {"events", "nope"}}, "must be an array"},
  };
  for (const auto& c : cases) {
    auto r = a.Call("POST", "/api/v1/nodes/n1/events", c.body);
    INFO(c.body.dump() << " -> " << r.body);
    CHECK(r.status == 400);
    CHECK(r.body.find(c.want) != std::string::npos);
  }
  auto r = a.http.Do("POST", "/api/v1/nodes/n1/events", "{not json",
                     {.content_type = "application/json"});
  CHECK(r->status == 400);
  CHECK(a.Call("PUT", "/api/v1/nodes/n1/facts", Json{{"cpu", 1}}).status == 400);
  CHECK(a.Call("POST", "/api/v1/nodes/nope/events", Batch("r", {Event(1)})).status == 404);
  CHECK(a.Call("GET", "/api/v1/nodes/n1/log").status == 404);
  CHECK(a.Call("PUT", "/api/v1/nodes/n1/log?run=../../etc", nullptr).status == 400);
  CHECK(a.Events().empty());
}

TEST_CASE(
    "an agent that stops heartbeating mid-install leaves its node lost, a finished one does not") {
  Api a;
  auto s = a.Call("POST", "/api/v1/nodes/n1/session",
                  Json{{"timeout_ms", 600}, {"info", {{"mode", "install"}}}});
  REQUIRE(s.status == 201);
  int64_t sid = ParseJson(s.body)->at("session");
  REQUIRE(a.Call("POST", "/api/v1/nodes/n1/events", Batch("r1", {Event(1, "phase")})).status ==
          200);
  CHECK(a.State() == "installing");
  CHECK(a.Call("GET", "/api/v1/coord/data/kiln/nodes/n1/agent").status == 200);
  // Heartbeats keep it alive past its timeout.
  for (int i = 0; i < 5; ++i) {
    CHECK(a.Call("POST", "/api/v1/nodes/n1/session/" + std::to_string(sid) + "/heartbeat").status ==
          200);
    ::usleep(200 * 1000);
  }
  CHECK(a.State() == "installing");
  // Then the agent dies.
  REQUIRE(WaitUntil([&] { return a.State() == "lost"; }, std::chrono::seconds(20)));
  CHECK(a.Call("GET", "/api/v1/coord/data/kiln/nodes/n1/agent").status == 404);
  CHECK(a.Call("POST", "/api/v1/nodes/n1/session/" + std::to_string(sid) + "/heartbeat").status ==
        404);

  // A node that reports installed and closes its session is not lost.
  s = a.Call("POST", "/api/v1/nodes/n1/session", Json{{"timeout_ms", 600}});
  sid = ParseJson(s.body)->at("session");
  REQUIRE(a.Call("POST", "/api/v1/nodes/n1/events", Batch("r2", {Event(1, "phase")})).status ==
          200);
  REQUIRE(a.Call("POST", "/api/v1/nodes/n1/installed", Json{{"image", "web@1"}}).status == 200);
  REQUIRE(a.Call("DELETE", "/api/v1/nodes/n1/session/" + std::to_string(sid)).status == 200);
  ::usleep(1500 * 1000);
  CHECK(a.State() == "installed");
}
