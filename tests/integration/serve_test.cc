// Drives the `kiln` binary the way an operator does: serve, status, curl.

#include <sched.h>
#include <signal.h>
#include <sys/stat.h>

#include <catch2/catch.hpp>

#include "common/file_util.h"
#include "common/http_client.h"
#include "common/strings.h"
#include "tests/support/kiln_server.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"

using namespace kiln;
using namespace kiln::test;

namespace {
int Lines(const std::string& s) {
  int n = 0;
  for (char c : s) n += c == '\n';
  return n;
}
// The error `kiln serve` ends with: exactly one "kiln serve:" line, the last
// (log lines from the attempt may come before it).
std::string ServeError(const std::string& err) {
  auto lines = Split(err, '\n');
  if (!lines.empty() && lines.back().empty()) lines.pop_back();
  int errors = 0;
  for (const auto& l : lines) errors += StartsWith(l, "kiln serve:");
  if (errors != 1 || lines.empty()) return "not one error line in: " + err;
  return lines.back();
}
}  // namespace

TEST_CASE("kiln serve answers health, version and metrics on an ephemeral port") {
  KilnServer server;
  HttpClient c(server.url(), "");
  auto health = c.Do("GET", "/healthz");
  REQUIRE(health.ok());
  CHECK(health->status == 200);
  CHECK(health->body == "ok\n");

  auto version = c.Do("GET", "/api/v1/version");
  REQUIRE(version.ok());
  CHECK(version->body.find("\"api\":1") != std::string::npos);

  auto metrics = c.Do("GET", "/metrics");
  REQUIRE(metrics.ok());
  CHECK(metrics->content_type.find("text/plain; version=0.0.4") == 0);
  CHECK(metrics->body.find(
            "kiln_http_requests_total{route=\"/healthz\",method=\"GET\",code=\"200\"} 1") !=
        std::string::npos);

  struct stat st {};
  REQUIRE(stat((server.data_dir() + "/admin.token").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  // Log lines are structured.
  CHECK(server.process().Stderr().find("INFO serve listening addr=127.0.0.1:") !=
        std::string::npos);
}

TEST_CASE(
    "kiln loads neither an HTTP nor a TLS library, and opens libarchive only when it reads one") {
  // The HTTP server is kiln's own (server/http/); libarchive is opened by
  // the commands that read or write archives, not linked.
  auto ldd = Run({"ldd", KILN_EXE});
  REQUIRE(ldd.exit_code == 0);
  CHECK(ldd.out.find("libmicrohttpd") == std::string::npos);
  CHECK(ldd.out.find("libgnutls") == std::string::npos);
  CHECK(ldd.out.find("libarchive") == std::string::npos);
  KilnServer server;
  auto maps = ReadFile("/proc/" + std::to_string(server.process().pid()) + "/maps");
  REQUIRE(maps.ok());
  CHECK(maps->find("libmicrohttpd") == std::string::npos);
}

TEST_CASE("kiln serve runs with the allocator the build chose, and logs which") {
  KilnServer server;
  auto maps = ReadFile("/proc/" + std::to_string(server.process().pid()) + "/maps");
  REQUIRE(maps.ok());
  const std::string& err = server.process().Stderr();
#ifdef KILN_WITH_MIMALLOC
  CHECK(maps->find("libmimalloc") != std::string::npos);
  CHECK(err.find("INFO serve allocator name=mimalloc version=") != std::string::npos);
#else
  CHECK(maps->find("libmimalloc") == std::string::npos);
  CHECK(err.find("INFO serve allocator name=libc") != std::string::npos);
#endif
}

TEST_CASE("without a loadable libarchive, the command says so and names its package") {
  // A private mount namespace hides the library behind an empty file for
  // this one process.
  TempDir t;
  WriteTestFile(t.Sub("empty.so"), "");
  WriteTestFile(t.Sub("tree.tar"), "");
  auto r = Run({"unshare", "-m", "sh", "-c",
                "mount --bind \"$0\" \"$1\" && exec \"$2\" image capture img --from-tar \"$3\" "
                "--server http://127.0.0.1:1 --token t",
                t.Sub("empty.so"), "/usr/lib/x86_64-linux-gnu/libarchive.so.13", KILN_EXE,
                t.Sub("tree.tar")});
  CHECK(r.exit_code != 0);
  CHECK(r.err.find("kiln image capture: cannot load libarchive.so.13 (Debian package "
                   "libarchive13)") != std::string::npos);
}

TEST_CASE("kiln serve raises its open-file limit to the hard limit, for many agents") {
  TempDir t;
  auto p = Process::Start({"prlimit", "--nofile=1024:4096", KILN_EXE, "serve", "--data",
                           t.Sub("data"), "--listen", "127.0.0.1:0"});
  REQUIRE(p.ok());
  REQUIRE(WaitUntil([&] { return p->Stderr().find("INFO serve listening") != std::string::npos; }));
  CHECK(p->Stderr().find("INFO serve \"open files\" limit=4096") != std::string::npos);
  auto limits = ReadFile("/proc/" + std::to_string(p->pid()) + "/limits");
  REQUIRE(limits.ok());
  CHECK(limits->find("Max open files            4096                 4096") != std::string::npos);
  p->Signal(SIGTERM);
  CHECK(p->Wait() == 0);
}

TEST_CASE("kiln serve runs two HTTP loops per CPU it may use, unless told") {
  TempDir t;
  auto loops = [&](std::vector<std::string> argv) {
    auto p = Process::Start(argv);
    REQUIRE(p.ok());
    REQUIRE(
        WaitUntil([&] { return p->Stderr().find("INFO serve listening") != std::string::npos; }));
    std::string err = p->Stderr();
    p->Signal(SIGTERM);
    CHECK(p->Wait() == 0);
    size_t at = err.find(" threads=", err.find("INFO serve listening"));
    REQUIRE(at != std::string::npos);
    return std::stoi(err.substr(at + 9));
  };
  // One CPU allowed (taskset): two loops, the least.
  CHECK(loops({"taskset", "-c", "0", KILN_EXE, "serve", "--data", t.Sub("a"), "--listen",
               "127.0.0.1:0"}) == 2);
  cpu_set_t set;
  CPU_ZERO(&set);
  REQUIRE(::sched_getaffinity(0, sizeof set, &set) == 0);
  CHECK(loops({KILN_EXE, "serve", "--data", t.Sub("b"), "--listen", "127.0.0.1:0"}) ==
        std::min(64, 2 * CPU_COUNT(&set)));
  CHECK(loops({KILN_EXE, "serve", "--data", t.Sub("c"), "--listen", "127.0.0.1:0", "--http-threads",
               "3"}) == 3);
}

TEST_CASE("kiln status reports a healthy server, as text and as JSON") {
  KilnServer server;
  auto text = server.Kiln({"status"});
  INFO(text.err);
  REQUIRE(text.exit_code == 0);
  CHECK(text.out.find("healthy") != std::string::npos);
  CHECK(text.out.find(server.data_dir()) != std::string::npos);

  auto json = server.Kiln({"status", "--json"});
  REQUIRE(json.exit_code == 0);
  auto j = ParseJson(json.out);
  REQUIRE(j.ok());
  CHECK((*j)["data_dir"] == server.data_dir());
  CHECK((*j)["http"]["state"] == "running");

  // The token and URL can come from the data directory alone.
  auto via_data = Run({KILN_EXE, "status", "--data", server.data_dir()});
  CHECK(via_data.exit_code == 0);
  CHECK(via_data.out.find(server.url()) != std::string::npos);
}

TEST_CASE("missing or wrong tokens get 401 with a JSON error, on reads and writes") {
  KilnServer server;
  HttpClient anon(server.url(), "");
  auto r = anon.Do("POST", "/api/v1/log-level", R"({"level":"debug"})");
  REQUIRE(r.ok());
  CHECK(r->status == 401);
  CHECK(r->body.find("\"code\":\"unauthenticated\"") != std::string::npos);

  HttpClient wrong(server.url(), "not-the-token");
  auto w = wrong.Do("GET", "/api/v1/status");
  REQUIRE(w.ok());
  CHECK(w->status == 401);

  auto cli = Run({KILN_EXE, "status", "--server", server.url(), "--token", "bad"});
  CHECK(cli.exit_code == 1);
  CHECK(Lines(cli.err) == 1);
  CHECK(cli.err.find("kiln status: the token is not valid on this server") == 0);

  // With the admin token the mutating call works and says what it did.
  auto api = server.Client();
  auto ok = api.Post("/api/v1/log-level", {{"level", "debug"}});
  REQUIRE(ok.ok());
  CHECK((*ok)["level"] == "debug");
  auto bad = api.Post("/api/v1/log-level", {{"level", "loud"}});
  CHECK(bad.status().code() == Code::kInvalidArgument);
  CHECK(bad.status().message().find("loud") != std::string::npos);
  auto not_json =
      api.http().Do("POST", "/api/v1/log-level", "{", {.content_type = "application/json"});
  REQUIRE(not_json.ok());
  CHECK(not_json->status == 400);
  CHECK(not_json->body.find("request body: invalid JSON") != std::string::npos);
}

TEST_CASE("a second server on the same data directory exits at once with a clear message") {
  KilnServer server;
  auto second = Run({KILN_EXE, "serve", "--data", server.data_dir(), "--listen", "127.0.0.1:0"});
  CHECK(second.exit_code == 1);
  CHECK(
      ServeError(second.err).find("kiln serve: another kiln serve is using " + server.data_dir()) ==
      0);
  CHECK(second.err.find("process " + std::to_string(server.process().pid())) != std::string::npos);
}

TEST_CASE("a port in use is a one-line error naming the address") {
  KilnServer server;
  TempDir t;
  std::string port = Split(server.url(), ':').back();
  auto r = Run({KILN_EXE, "serve", "--data", t.Sub("d"), "--listen", "127.0.0.1:" + port});
  CHECK(r.exit_code == 1);
  CHECK(ServeError(r.err) == "kiln serve: listen 127.0.0.1:" + port + ": Address already in use");
}

TEST_CASE("an unwritable data directory is a one-line error") {
  auto r = Run({KILN_EXE, "serve", "--data", "/proc/self/kiln", "--listen", "127.0.0.1:0"});
  CHECK(r.exit_code == 1);
  CHECK(ServeError(r.err).find("kiln serve: cannot create data directory: mkdir /proc/self/kiln") ==
        0);
}

TEST_CASE("unknown flags and commands are one-line usage errors with exit 2") {
  auto flag = Run({KILN_EXE, "serve", "--frobnicate"});
  CHECK(flag.exit_code == 2);
  CHECK(Lines(flag.err) == 1);
  CHECK(flag.err.find("--frobnicate") != std::string::npos);

  auto cmd = Run({KILN_EXE, "launch"});
  CHECK(cmd.exit_code == 2);
  CHECK(Lines(cmd.err) == 1);

  auto bad_listen = Run({KILN_EXE, "serve", "--data", "/tmp/x", "--listen", "here:there"});
  CHECK(bad_listen.exit_code == 2);
  CHECK(bad_listen.err.find("bad listen address") != std::string::npos);
}

TEST_CASE("--help explains every command and flag") {
  auto top = Run({KILN_EXE, "--help"});
  CHECK(top.exit_code == 0);
  for (const char* word : {"serve", "status", "KILN_SERVER", "KILN_TOKEN"})
    CHECK(top.out.find(word) != std::string::npos);
  auto serve = Run({KILN_EXE, "serve", "--help"});
  CHECK(serve.exit_code == 0);
  for (const char* word : {"--data", "--listen", "--http-threads", "--log-level", "Example"})
    CHECK(serve.out.find(word) != std::string::npos);
  auto status = Run({KILN_EXE, "status", "--help"});
  for (const char* word : {"--server", "--token", "--json", "Exit status"})
    CHECK(status.out.find(word) != std::string::npos);
  auto agent = Run({KILN_AGENT_EXE, "--help"});
  CHECK(agent.exit_code == 0);
}

TEST_CASE("status against no server says so and exits 3") {
  auto r = Run({KILN_EXE, "status", "--server", "http://127.0.0.1:1", "--token", "x"});
  CHECK(r.exit_code == 3);
  CHECK(Lines(r.err) == 1);
  CHECK(r.err.find("is `kiln serve` running?") != std::string::npos);
}

TEST_CASE("SIGTERM and SIGINT stop the server cleanly and release the data directory") {
  for (int sig : {SIGTERM, SIGINT}) {
    KilnServer server;
    std::string dir = server.data_dir();
    server.process().Signal(sig);
    CHECK(server.process().Wait(std::chrono::seconds(10)) == 0);
    CHECK(server.process().Stderr().find("INFO serve stopped") != std::string::npos);
    CHECK(access((dir + "/serve.json").c_str(), F_OK) != 0);
    KilnServer again(dir, {});  // the lock is free again
    HttpClient c(again.url(), "");
    CHECK(c.Do("GET", "/healthz")->status == 200);
  }
}
