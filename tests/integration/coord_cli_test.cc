// `kiln coord ...` against a real `kiln serve`, as an operator uses it:
// create, read, change and watch znodes; kill -9 the server and find every
// acknowledged write after the restart; a watch that resumes across it.

#include <signal.h>

#include <catch2/catch.hpp>

#include "common/json.h"
#include "common/strings.h"
#include "tests/support/kiln_server.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"

using namespace kiln;
using namespace kiln::test;
using namespace std::chrono_literals;

namespace {

int Lines(const std::string& s) {
  int n = 0;
  for (char c : s) n += c == '\n';
  return n;
}

std::vector<Json> JsonLines(const std::string& out) {
  std::vector<Json> v;
  for (const auto& line : Split(out, '\n')) {
    if (line.empty()) continue;
    auto j = ParseJson(line);
    if (j.ok()) v.push_back(*j);
  }
  return v;
}

}  // namespace

TEST_CASE("kiln coord create, get, ls, set and rm work and fail clearly") {
  KilnServer server;
  auto created = server.Kiln({"coord", "create", "/app", "{\"replicas\":3}"});
  INFO(created.err);
  REQUIRE(created.exit_code == 0);
  CHECK(created.out == "/app\n");

  auto get = server.Kiln({"coord", "get", "/app"});
  CHECK(get.exit_code == 0);
  CHECK(get.out == "{\"replicas\":3}");

  auto get_json = server.Kiln({"coord", "get", "/app", "--json"});
  REQUIRE(get_json.exit_code == 0);
  auto j = ParseJson(get_json.out);
  REQUIRE(j.ok());
  CHECK((*j)["data"] == "{\"replicas\":3}");
  CHECK((*j)["stat"]["version"] == 0);
  CHECK((*j)["stat"]["czxid"].get<int64_t>() > 0);

  for (int i = 0; i < 3; ++i) {
    auto seq = server.Kiln({"coord", "create", "/app/job-", "x", "--sequential"});
    CHECK(seq.out == "/app/job-000000000" + std::to_string(i) + "\n");
  }
  auto ls = server.Kiln({"coord", "ls", "/app"});
  CHECK(ls.out == "job-0000000000\njob-0000000001\njob-0000000002\n");
  auto ls_json = server.Kiln({"coord", "ls", "/app", "--json"});
  CHECK(ParseJson(ls_json.out)->at("children").size() == 3);

  auto set = server.Kiln({"coord", "set", "/app", "{\"replicas\":4}", "--version", "0"});
  CHECK(set.exit_code == 0);
  CHECK(set.out.find("/app version 1") == 0);
  auto stale = server.Kiln({"coord", "set", "/app", "{}", "--version", "0"});
  CHECK(stale.exit_code == 1);
  CHECK(Lines(stale.err) == 1);
  CHECK(stale.err.find("kiln coord set: /app: expected version 0, the znode is at version 1") == 0);

  auto not_empty = server.Kiln({"coord", "rm", "/app"});
  CHECK(not_empty.exit_code == 1);
  CHECK(not_empty.err.find("3 children") != std::string::npos);
  auto missing = server.Kiln({"coord", "rm", "/nope"});
  CHECK(missing.exit_code == 4);
  CHECK(missing.err == "kiln coord rm: /nope: no such znode\n");
  auto no_parent = server.Kiln({"coord", "create", "/a/b/c"});
  CHECK(no_parent.exit_code == 4);
  CHECK(no_parent.err.find("parent /a/b does not exist") != std::string::npos);
  auto bad_path = server.Kiln({"coord", "get", "/a/../b"});
  CHECK(bad_path.exit_code == 2);
  CHECK(bad_path.err.find("malformed path") != std::string::npos);

  CHECK(server.Kiln({"coord", "rm", "/app/job-0000000000", "--version", "0"}).exit_code == 0);
  CHECK(server.Kiln({"coord", "get", "/app/job-0000000000"}).exit_code == 4);

  // The server's namespace and its own registration are there.
  auto servers = server.Kiln({"coord", "ls", "/kiln/servers"});
  CHECK(Lines(servers.out) == 1);
  auto kiln = server.Kiln({"coord", "ls", "/kiln"});
  for (const char* n : {"election", "images", "locks", "nodes", "servers"})
    CHECK(kiln.out.find(n) != std::string::npos);
}

TEST_CASE("kiln status shows the coordination store") {
  KilnServer server;
  auto st = server.Kiln({"status", "--json"});
  REQUIRE(st.exit_code == 0);
  auto j = ParseJson(st.out);
  REQUIRE(j.ok());
  CHECK((*j)["coord"]["backend"] == "embedded");
  CHECK((*j)["coord"]["state"] == "ok");
  CHECK((*j)["coord"]["znodes"].get<int>() >= 7);
  CHECK((*j)["coord"]["server"]["registered_as"].get<std::string>().find("/kiln/servers/") == 0);
  auto text = server.Kiln({"status"});
  CHECK(text.out.find("coord") != std::string::npos);
  auto metrics = server.Client().http().Do("GET", "/metrics");
  REQUIRE(metrics.ok());
  CHECK(metrics->body.find("kiln_coord_fsyncs_total") != std::string::npos);
  CHECK(metrics->body.find("kiln_coord_zxid") != std::string::npos);
}

TEST_CASE("kill -9 loses no acknowledged write, and a watch resumes across the restart") {
  TempDir tmp;
  std::string data = tmp.Sub("data");
  auto server = std::make_unique<KilnServer>(data, std::vector<std::string>{});

  // A watch from the beginning of history that follows the server through
  // its data directory (the restarted server listens on another port).
  Process watch = std::move(*Process::Start(
      {KILN_EXE, "coord", "watch", "/kiln/app", "--since", "0", "--json", "--data", data}));

  std::vector<std::string> acked;
  REQUIRE(server->Kiln({"coord", "create", "/kiln/app", "v0"}).exit_code == 0);
  for (int i = 0; i < 5; ++i) {
    std::string path = "/kiln/app/n" + std::to_string(i);
    auto r = server->Kiln({"coord", "create", path, "data-" + std::to_string(i)});
    REQUIRE(r.exit_code == 0);
    acked.push_back(path);
  }
  REQUIRE(server->Kiln({"coord", "set", "/kiln/app", "v1"}).exit_code == 0);
  REQUIRE(WaitUntil([&] { return Lines(watch.Stdout()) >= 7; }));

  server->process().Signal(SIGKILL);
  CHECK(server->process().Wait() == 128 + SIGKILL);
  server.reset();

  KilnServer again(data, {});
  for (const auto& path : acked) {
    auto r = again.Kiln({"coord", "get", path});
    INFO(path << ": " << r.err);
    CHECK(r.exit_code == 0);
  }
  CHECK(again.Kiln({"coord", "get", "/kiln/app"}).out == "v1");
  REQUIRE(again.Kiln({"coord", "rm", "/kiln/app/n0"}).exit_code == 0);
  REQUIRE(again.Kiln({"coord", "set", "/kiln/app", "v2"}).exit_code == 0);

  // Every change exactly once, in zxid order: 1 + 5 creates, two sets, a
  // delete and a set.
  REQUIRE(WaitUntil([&] { return Lines(watch.Stdout()) >= 9; }, 30s));
  watch.Signal(SIGTERM);
  watch.Wait();
  auto events = JsonLines(watch.Stdout());
  INFO(watch.Stdout() << watch.Stderr());
  REQUIRE(events.size() == 9);
  CHECK(events[0]["type"] == "created");
  CHECK(events[0]["path"] == "/kiln/app");
  for (int i = 0; i < 5; ++i) CHECK(events[1 + i]["path"] == "/kiln/app/n" + std::to_string(i));
  CHECK(events[6]["data"] == "v1");
  CHECK(events[7]["type"] == "deleted");
  CHECK(events[8]["data"] == "v2");
  for (size_t i = 1; i < events.size(); ++i)
    CHECK(events[i]["zxid"].get<int64_t>() > events[i - 1]["zxid"].get<int64_t>());
  CHECK(watch.Stderr().find("reconnecting") != std::string::npos);

  // --since 0 replays the same history after the restart too.
  auto replay =
      again.Kiln({"coord", "watch", "/kiln/app", "--since", "0", "--json", "--count", "9"});
  CHECK(replay.exit_code == 0);
  CHECK(JsonLines(replay.out).size() == 9);
}

// Watch streams the server has open (its own included: a fresh server
// already follows a few).
int OpenStreams(KilnServer& server) {
  auto st = server.Client().Get("/api/v1/status");
  return st.ok() ? (*st)["coord"]["streams"].get<int>() : -1;
}

TEST_CASE("kiln coord watch without --since starts from now, --count ends it") {
  KilnServer server;
  REQUIRE(server.Kiln({"coord", "create", "/w", "before"}).exit_code == 0);
  int before = OpenStreams(server);
  REQUIRE(before >= 0);
  Process watch = std::move(*Process::Start({KILN_EXE, "coord", "watch", "/w", "--count", "2",
                                             "--server", server.url(), "--token", server.token()}));
  // The watch is live once the server counts its stream.
  REQUIRE(WaitUntil([&] { return OpenStreams(server) >= before + 1; }));
  REQUIRE(server.Kiln({"coord", "set", "/w", "after"}).exit_code == 0);
  REQUIRE(server.Kiln({"coord", "create", "/w/child", "c"}).exit_code == 0);
  CHECK(watch.Wait() == 0);
  auto out = watch.Stdout();
  CHECK(out.find("before") == std::string::npos);
  CHECK(out.find("changed  /w after") != std::string::npos);
  CHECK(out.find("created  /w/child c") != std::string::npos);
}

TEST_CASE("many watchers of one znode each get every change, each with its own data") {
  // The server renders a change's event once for all the streams that carry
  // it; each stream must still get every change, in order, with its own
  // data, and nothing of another change.
  KilnServer server;
  REQUIRE(server.Kiln({"coord", "create", "/many", "v0"}).exit_code == 0);
  int before = OpenStreams(server);
  REQUIRE(before >= 0);
  std::vector<Process> watches;
  for (int i = 0; i < 5; ++i)
    watches.push_back(
        std::move(*Process::Start({KILN_EXE, "coord", "watch", "/many", "--count", "12", "--json",
                                   "--server", server.url(), "--token", server.token()})));
  REQUIRE(WaitUntil([&] { return OpenStreams(server) >= before + 5; }));
  for (int v = 1; v <= 12; ++v)
    REQUIRE(server.Kiln({"coord", "set", "/many", "v" + std::to_string(v)}).exit_code == 0);
  for (Process& w : watches) {
    CHECK(w.Wait() == 0);
    auto events = JsonLines(w.Stdout());
    INFO(w.Stdout());
    REQUIRE(events.size() == 12);
    int64_t last_zxid = 0;
    for (size_t i = 0; i < events.size(); ++i) {
      std::string data = events[i].value("data", ""), type = events[i].value("type", "");
      int64_t zxid = events[i].value("zxid", int64_t{0});
      CHECK(data == "v" + std::to_string(i + 1));
      CHECK(type == "changed");
      CHECK(zxid > last_zxid);
      last_zxid = zxid;
    }
  }
}

TEST_CASE("kiln coord --help explains every subcommand") {
  auto top = Run({KILN_EXE, "coord", "--help"});
  CHECK(top.exit_code == 0);
  for (const char* w : {"get", "ls", "create", "set", "rm", "watch", "Examples"})
    CHECK(top.out.find(w) != std::string::npos);
  auto watch = Run({KILN_EXE, "coord", "watch", "--help"});
  for (const char* w : {"--since", "--json", "--count", "compacted"})
    CHECK(watch.out.find(w) != std::string::npos);
  auto usage = Run({KILN_EXE, "coord", "set", "/x"});
  CHECK(usage.exit_code == 2);
}
