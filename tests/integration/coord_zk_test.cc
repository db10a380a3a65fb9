// `kiln serve --coord zk://...` against a real ZooKeeper server: the same
// CLI operations as with the embedded store, the namespace, the server's
// ephemeral registration, and a bad URL.

#include <signal.h>

#include <catch2/catch.hpp>

#include "common/json.h"
#include "common/strings.h"
#include "tests/coord/zk_test_server.h"
#include "tests/support/kiln_server.h"
#include "tests/support/process.h"

using namespace kiln;
using namespace kiln::test;
using namespace std::chrono_literals;

TEST_CASE("kiln serve --coord zk:// works with the same commands as embedded", "[zookeeper]") {
  if (!ZkAvailable()) {
    WARN("SKIP: " << ZkUnavailableReason());
    return;
  }
  auto& zk = ZkTestServer::Shared();
  std::string url = "zk://" + zk.hostport() + "/kiln-it-" + std::to_string(::getpid());
  KilnServer server({"--coord", url});

  auto st = ParseJson(server.Kiln({"status", "--json"}).out);
  REQUIRE(st.ok());
  CHECK((*st)["coord"]["backend"] == "zookeeper");
  CHECK((*st)["coord"]["state"] == "ok");

  CHECK(server.Kiln({"coord", "create", "/app", "v0"}).exit_code == 0);
  CHECK(server.Kiln({"coord", "create", "/app/job-", "--sequential"}).out ==
        "/app/job-0000000000\n");
  CHECK(server.Kiln({"coord", "set", "/app", "v1", "--version", "0"}).exit_code == 0);
  auto stale = server.Kiln({"coord", "set", "/app", "v2", "--version", "0"});
  CHECK(stale.exit_code == 1);
  CHECK(stale.err.find("/app") != std::string::npos);
  CHECK(server.Kiln({"coord", "get", "/app"}).out == "v1");
  CHECK(server.Kiln({"coord", "ls", "/app"}).out == "job-0000000000\n");
  CHECK(server.Kiln({"coord", "rm", "/nope"}).exit_code == 4);
  auto servers = server.Kiln({"coord", "ls", "/kiln/servers"});
  CHECK(Split(servers.out, '\n').size() == 2);  // one name and the final ""

  // A watch from now sees a change made through another command. The
  // server keeps streams of its own (the image catalog): wait for one more.
  auto streams = [&] {
    auto s = server.Client().Get("/api/v1/status");
    return s.ok() ? (*s)["coord"]["streams"].get<int>() : -1;
  };
  int before = streams();
  Process watch =
      std::move(*Process::Start({KILN_EXE, "coord", "watch", "/app", "--count", "1", "--json",
                                 "--server", server.url(), "--token", server.token()}));
  REQUIRE(WaitUntil([&] { return streams() > before; }));
  CHECK(server.Kiln({"coord", "set", "/app", "v3"}).exit_code == 0);
  CHECK(watch.Wait() == 0);
  auto ev = ParseJson(watch.Stdout());
  REQUIRE(ev.ok());
  CHECK((*ev)["path"] == "/app");
  CHECK((*ev)["data"] == "v3");
  // No history to replay: a resume catches up from the znodes' current
  // state, oldest change first (docs/OPERATOR.md).
  auto resumed = server.Kiln({"coord", "watch", "/app", "--since", "1", "--count", "2", "--json"});
  CHECK(resumed.exit_code == 0);
  auto lines = Split(resumed.out, '\n');
  REQUIRE(lines.size() == 3);
  auto first = ParseJson(lines[0]), second = ParseJson(lines[1]);
  REQUIRE(first.ok());
  REQUIRE(second.ok());
  CHECK((*first)["type"] == "created");
  CHECK((*first)["path"] == "/app");
  CHECK((*first)["data"] == "v3");
  CHECK((*second)["path"] == "/app/job-0000000000");
  CHECK((*second)["zxid"].get<int64_t>() > (*first)["zxid"].get<int64_t>());

  // Stopping the server closes its session: its registration goes at once.
  CHECK(server.Stop() == 0);
  KilnServer again({"--coord", url});
  auto after = again.Kiln({"coord", "ls", "/kiln/servers"});
  CHECK(Split(after.out, '\n').size() == 2);
  CHECK(again.Kiln({"coord", "get", "/app"}).out == "v3");
}

TEST_CASE("kiln serve refuses a malformed or unreachable --coord with one line") {
  TempDir t;
  auto bad = Run({KILN_EXE, "serve", "--data", t.Sub("d"), "--listen", "127.0.0.1:0", "--coord",
                  "zk://nohost"});
  CHECK(bad.exit_code == 2);
  CHECK(bad.err.find("--coord: coordination URL \"zk://nohost\"") != std::string::npos);
  auto down = Run({KILN_EXE, "serve", "--data", t.Sub("d2"), "--listen", "127.0.0.1:0", "--coord",
                   "zk://127.0.0.1:1/x"},
                  {}, 60s);
  CHECK(down.exit_code == 1);
  CHECK(down.err.find("kiln serve: coordination store zk://127.0.0.1:1/x") != std::string::npos);
}

TEST_CASE("a SIGKILLed server's registration vanishes when ZooKeeper expires its session",
          "[zookeeper]") {
  if (!ZkAvailable()) {
    WARN("SKIP: " << ZkUnavailableReason());
    return;
  }
  auto& zk = ZkTestServer::Shared();
  std::string url = "zk://" + zk.hostport() + "/kiln-kill-" + std::to_string(::getpid());
  auto doomed = std::make_unique<KilnServer>(std::vector<std::string>{"--coord", url});
  KilnServer survivor({"--coord", url});
  auto registered = [&] {
    auto r = survivor.Kiln({"coord", "ls", "/kiln/servers"});
    return r.exit_code == 0 ? static_cast<int>(Split(r.out, '\n').size()) - 1 : -1;
  };
  REQUIRE(registered() == 2);
  auto who = ParseJson(doomed->Kiln({"status", "--json"}).out);
  REQUIRE(who.ok());
  std::string doomed_path = (*who)["coord"]["server"]["registered_as"];
  CHECK(survivor.Kiln({"coord", "get", doomed_path}).exit_code == 0);

  // No close reaches ZooKeeper: only ZooKeeper's session expiry (after the
  // presence session's 10 s timeout) removes it.
  doomed->process().Signal(SIGKILL);
  CHECK(doomed->process().Wait() == 128 + SIGKILL);
  doomed.reset();
  REQUIRE(WaitUntil([&] { return registered() == 1; }, 60s));
  auto gone = survivor.Kiln({"coord", "get", doomed_path});
  CHECK(gone.exit_code == 4);
  CHECK(gone.err.find(doomed_path) != std::string::npos);
}
