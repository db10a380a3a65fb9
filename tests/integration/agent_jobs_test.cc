// Life on installed hosts, driven as an operator would: two dirinstalled
// trees with their `kiln-agent daemon`s, and `kiln node run | update |
// rollback` against a real `kiln serve`.

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <filesystem>

#include "common/file_util.h"
#include "common/http_client.h"
#include "common/json.h"
#include "common/strings.h"
#include "tests/support/kiln_server.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"

using namespace kiln;
using namespace kiln::test;
namespace fs = std::filesystem;

namespace {

const std::string kExamples = std::string(KILN_SOURCE_DIR) + "/examples";

void Put(const std::string& path, const std::string& content, mode_t mode = 0644) {
  fs::create_directories(fs::path(path).parent_path());
  REQUIRE(WriteFileAtomic(path, content, mode).ok());
}

// Bytes that do not compress (xorshift), so a stream of them is long.
std::string Noise(size_t n, uint64_t seed) {
  std::string out(n, '\0');
  for (char& c : out) {
    seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
    c = static_cast<char>(seed);
  }
  return out;
}

std::string ReadOr(const std::string& path) {
  return ReadFile(path).value_or("<missing>");
}

struct Fleet {
  TempDir work;
  KilnServer server{{"--space", kExamples + "/space"}};
  std::vector<std::unique_ptr<Process>> daemons;

  void Capture(const std::string& note) {
    auto r =
        server.Kiln({"image", "capture", "web", "--from-dir", work.Sub("tree"), "--note", note});
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
  }

  Fleet() {
    std::string tree = work.Sub("tree");
    fs::create_directories(tree + "/bin");
    fs::copy_file("/bin/busybox", tree + "/bin/busybox");
    for (const char* app : {"sh", "ln", "rm"}) fs::create_symlink("busybox", tree + "/bin/" + app);
    Put(tree + "/etc/passwd", "root:x:0:0:root:/root:/bin/sh\n");
    Put(tree + "/etc/group", "root:x:0:\n");
    fs::create_directories(tree + "/etc/nginx/sites-available");
    fs::create_directories(tree + "/etc/nginx/sites-enabled");
    fs::create_directories(tree + "/tmp");
    Put(tree + "/usr/share/old", "goes away in v4\n");
    for (int v = 1; v <= 3; ++v) {
      Put(tree + "/etc/kiln-release", "web " + std::to_string(v) + "\n");
      Capture("v" + std::to_string(v));
    }
    for (const char* n : {"web01", "web02"}) {
      std::string mac = std::string("52:54:00:00:02:0") + (n[4] == '1' ? "1" : "2");
      REQUIRE(server.Kiln({"node", "add", n, "--mac", mac}).exit_code == 0);
      auto r = Run({KILN_AGENT_EXE, "dirinstall", "--server", server.url(), "--node-token",
                    server.token(), "--node", n, "--root", work.Sub(n), "--state",
                    work.Sub(std::string("state-") + n), "--log", work.Sub(std::string(n) + ".log"),
                    "--facts", kExamples + "/facts/web01.json"});
      INFO(r.err);
      REQUIRE(r.exit_code == 0);
      // web01 learns of its jobs through long polls (the default), web02
      // asks every 100 ms (the fallback for servers that cannot hold one).
      std::vector<std::string> args = {
          KILN_AGENT_EXE, "daemon",   "--root",
          work.Sub(n),    "--config", work.Sub(std::string(n) + "/etc/kiln/agent.json")};
      if (n[4] == '2') args.insert(args.end(), {"--wait-s", "0", "--poll-ms", "100"});
      auto d = Process::Start(args);
      REQUIRE(d.ok());
      daemons.push_back(std::make_unique<Process>(std::move(*d)));
    }
    // v4: a changed file, a new one, one removed.
    Put(tree + "/etc/kiln-release", "web 4\n");
    Put(tree + "/usr/share/new", "new in v4\n");
    fs::remove(tree + "/usr/share/old");
    Capture("v4");
  }
  ~Fleet() {
    for (auto& d : daemons) {
      d->Signal(SIGTERM);
      d->Wait();
    }
  }
  // A real node token for web01, enrolled as a booting machine would (the
  // trees were installed with the admin token).
  std::string EnrollWeb01() {
    REQUIRE(server.Kiln({"node", "install", "web01"}).exit_code == 0);
    HttpClient anon(server.url(), "");
    auto script = anon.Do("GET", "/boot/ipxe?mac=52:54:00:00:02:01");
    size_t t = script.ok() ? script->body.find("kiln.token=") : std::string::npos;
    REQUIRE(t != std::string::npos);
    auto e =
        anon.Do("POST", "/api/v1/enroll", Json{{"token", script->body.substr(t + 11, 32)}}.dump(),
                {.content_type = "application/json"});
    REQUIRE(e.ok());
    return ParseJson(e->body).value()["token"].get<std::string>();
  }
  Json Config(const std::string& n) {
    return ParseJson(ReadOr(work.Sub(n + "/etc/kiln/agent.json"))).value();
  }
};

}  // namespace

TEST_CASE("kiln node run, update and rollback on installed hosts") {
  Fleet f;
  // run: a command on both hosts, outputs and exit codes back.
  auto run = f.server.Kiln({"node", "run", "web01", "web02", "-c", "cat etc/kiln-release"});
  INFO(run.out << run.err);
  CHECK(run.exit_code == 0);
  CHECK(run.out.find("web01: ok (exited with 0)\n  web 3\n") != std::string::npos);
  CHECK(run.out.find("web02: ok (exited with 0)\n  web 3\n") != std::string::npos);
  CHECK(run.out.find("2 of 2 hosts ok") != std::string::npos);
  // The same after --, as ssh takes it: the words joined with spaces.
  auto dashed = f.server.Kiln({"node", "run", "web02", "--", "cat", "etc/kiln-release"});
  INFO(dashed.out << dashed.err);
  CHECK(dashed.exit_code == 0);
  CHECK(dashed.out.find("web02: ok (exited with 0)\n  web 3\n") != std::string::npos);
  auto both = f.server.Kiln({"node", "run", "web02", "-c", "true", "--", "false"});
  CHECK(both.exit_code == 2);
  CHECK(both.err.find("with -c or after --, not both") != std::string::npos);
  auto none = f.server.Kiln({"node", "run", "web02"});
  CHECK(none.exit_code == 2);
  CHECK(none.err.find("no command") != std::string::npos);

  // update: exactly version 4, by delta; the agent says so.
  auto up = f.server.Kiln({"node", "update", "web01", "--to", "web@4"});
  INFO(up.out << up.err);
  REQUIRE(up.exit_code == 0);
  CHECK(up.out.find("updated web@3 -> web@4") != std::string::npos);
  CHECK(up.out.find("delta from 3") != std::string::npos);
  std::string r1 = f.work.Sub("web01");
  CHECK(ReadOr(r1 + "/etc/kiln-release") == "web 4\n");
  CHECK(ReadOr(r1 + "/usr/share/new") == "new in v4\n");
  CHECK(!fs::exists(r1 + "/usr/share/old"));
  CHECK(fs::is_symlink(r1 + "/etc/localtime"));  // what the class scripts did stays
  CHECK(f.Config("web01")["image"] == "web@4");
  CHECK(ReadOr(f.work.Sub("web02/etc/kiln-release")) == "web 3\n");  // only web01
  HttpClient admin(f.server.url(), f.server.token());
  REQUIRE(WaitUntil([&] {
    auto g = admin.Do("GET", "/api/v1/coord/data/kiln/nodes/web01/agent");
    return g.ok() && g->body.find("web@4") != std::string::npos;
  }));

  // An update that breaks part-way leaves the host exactly where it was.
  // Random bytes: the stream must be long, not compressible to nothing.
  const std::string big = Noise(3 << 20, 88172645463325252ull);
  Put(f.work.Sub("tree/usr/share/big"), big);
  Put(f.work.Sub("tree/etc/kiln-release"), "web 5\n");
  f.Capture("v5");
  auto job =
      admin.Do("POST", "/api/v1/nodes/web01/jobs",
               Json{{"kind", "update"},
                    {"args", {{"image", "web"}, {"version", "5"}, {"break_after_bytes", 100000}}}}
                   .dump(),
               {.content_type = "application/json"});
  REQUIRE(job->status == 201);
  std::string id = ParseJson(job->body).value()["id"];
  Json done;
  REQUIRE(WaitUntil(
      [&] {
        auto g = admin.Do("GET", "/api/v1/nodes/web01/jobs/" + id);
        done = ParseJson(g->body).value_or(Json());
        return done.value("state", "") == "failed" || done.value("state", "") == "done";
      },
      std::chrono::seconds(30)));
  CHECK(done["state"] == "failed");
  CHECK(done["message"].get<std::string>().find("the host is back at web@4") != std::string::npos);
  CHECK(ReadOr(r1 + "/etc/kiln-release") == "web 4\n");
  CHECK(!fs::exists(r1 + "/usr/share/big"));
  CHECK(f.Config("web01")["image"] == "web@4");
}

TEST_CASE("rollback returns a host to the version before its update, also without the server") {
  Fleet f;
  std::string r2 = f.work.Sub("web02");
  REQUIRE(f.server.Kiln({"node", "update", "web02", "--to", "web@4"}).exit_code == 0);
  CHECK(ReadOr(r2 + "/etc/kiln-release") == "web 4\n");
  auto rb = f.server.Kiln({"node", "rollback", "web02"});
  INFO(rb.out << rb.err);
  REQUIRE(rb.exit_code == 0);
  CHECK(rb.out.find("rolled back web@4 -> web@3") != std::string::npos);
  CHECK(ReadOr(r2 + "/etc/kiln-release") == "web 3\n");
  CHECK(ReadOr(r2 + "/usr/share/old") == "goes away in v4\n");
  CHECK(!fs::exists(r2 + "/usr/share/new"));
  CHECK(f.Config("web02")["image"] == "web@3");
  // Nothing left to roll back.
  auto again = f.server.Kiln({"node", "rollback", "web02"});
  CHECK(again.exit_code == 1);
  CHECK(again.out.find("nothing to roll back to") != std::string::npos);

  // On the host, with the server gone.
  REQUIRE(f.server.Kiln({"node", "update", "web02", "--to", "web@4"}).exit_code == 0);
  f.daemons[1]->Signal(SIGTERM);
  f.daemons[1]->Wait();
  int stopped = f.server.Stop();
  INFO(f.server.process().Stderr());
  REQUIRE(stopped == 0);
  auto local =
      Run({KILN_AGENT_EXE, "rollback", "--root", r2, "--config", r2 + "/etc/kiln/agent.json"});
  INFO(local.err);
  CHECK(local.exit_code == 0);
  CHECK(ReadOr(r2 + "/etc/kiln-release") == "web 3\n");
}

TEST_CASE("kiln node diff lists what drifted from the image a host runs") {
  Fleet f;
  std::string r1 = f.work.Sub("web01");
  Put(r1 + "/usr/share/added-by-hand", "x\n");
  Put(r1 + "/etc/kiln-release", "web 3 (edited)\n");
  fs::remove(r1 + "/usr/share/old");
  auto d = f.server.Kiln({"node", "diff", "web01"});
  INFO(d.out << d.err);
  CHECK(d.exit_code == 0);
  CHECK(d.out.find("added /usr/share/added-by-hand") != std::string::npos);
  CHECK(d.out.find("changed /etc/kiln-release (content") != std::string::npos);
  CHECK(d.out.find("removed /usr/share/old") != std::string::npos);
  CHECK(d.out.find("added /etc/motd\n") != std::string::npos);  // the class file
  CHECK(d.out.find("/.kiln-undo") == std::string::npos);
  auto clean = f.server.Kiln({"node", "diff", "web02", "--json"});
  REQUIRE(clean.exit_code == 0);
  Json j = ParseJson(clean.out).value();
  CHECK(j["result"]["image"] == "web@3");
  for (const Json& c : j["result"]["changes"]) CHECK(c["path"] != "/usr/share/added-by-hand");
}

TEST_CASE("a host is captured as a new image, and a second capture moves almost nothing") {
  Fleet f;
  std::string r1 = f.work.Sub("web01");
  Put(r1 + "/srv/app/data.bin", std::string(200000, 'd'));
  auto c = f.server.Kiln(
      {"image", "capture", "golden", "--from-host", "web01", "--note", "from web01", "--json"});
  INFO(c.out << c.err);
  REQUIRE(c.exit_code == 0);
  Json first = ParseJson(c.out).value();
  CHECK(first["result"]["image"] == "golden@1");
  CHECK(first["result"]["objects_sent"].get<uint64_t>() > 0);
  // What it captured deploys back exactly, and never the node's token.
  auto d = f.server.Kiln({"image", "deploy", "golden@1", "--to", f.work.Sub("copy")});
  REQUIRE(d.exit_code == 0);
  CHECK(ReadOr(f.work.Sub("copy/srv/app/data.bin")) == std::string(200000, 'd'));
  CHECK(ReadOr(f.work.Sub("copy/etc/motd")) == ReadOr(r1 + "/etc/motd"));
  CHECK(!fs::exists(f.work.Sub("copy/etc/kiln/agent.json")));
  CHECK(!fs::exists(f.work.Sub("copy/var/lib/kiln-agent")));

  // One file changed: one object travels, unchanged files are not re-read.
  Put(r1 + "/etc/kiln-release", "web 3 + hotfix\n");
  auto c2 = f.server.Kiln({"image", "capture", "golden", "--from-host", "web01", "--json"});
  REQUIRE(c2.exit_code == 0);
  Json second = ParseJson(c2.out).value();
  CHECK(second["result"]["image"] == "golden@2");
  CHECK(second["result"]["objects_sent"].get<uint64_t>() <= 2);  // the file, and the manifest
  CHECK(second["result"]["files_hashed"].get<uint64_t>() <= 3);

  // A node token cannot upload a capture on its own (a real one, enrolled).
  HttpClient node(f.server.url(), f.EnrollWeb01());
  auto denied = node.Do("POST", "/api/v1/images/golden/captures", "x",
                        {.content_type = "application/octet-stream"});
  CHECK(denied->status == 403);
  CHECK(denied->body.find("capture job") != std::string::npos);
  // Nor open one, nor offer to or finish a capture that is not its own.
  auto open = node.Do("POST", "/api/v1/images/golden/captures?open=1", "",
                      {.content_type = "application/octet-stream"});
  CHECK(open->status == 403);
  HttpClient admin(f.server.url(), f.server.token());
  auto opened = admin.Do("POST", "/api/v1/images/golden/captures?open=1", "",
                         {.content_type = "application/octet-stream"});
  REQUIRE(opened->status == 200);
  std::string id = ParseJson(opened->body).value()["capture"];
  for (const char* what : {"offer", "manifest", "objects", "commit"}) {
    INFO(what);
    auto r = node.Do("POST", "/api/v1/images/captures/" + id + "/" + what, "",
                     {.content_type = "application/octet-stream"});
    CHECK(r->status == 403);
  }
}

TEST_CASE("hosts picked by class run in waves of max-parallel") {
  Fleet f;
  auto r = f.server.Kiln(
      {"node", "run", "--class", "WEB", "--max-parallel", "1", "-c", "cat etc/kiln-release"});
  INFO(r.out << r.err);
  CHECK(r.exit_code == 0);
  CHECK(r.out.find("web01: ok") != std::string::npos);
  CHECK(r.out.find("web02: ok") != std::string::npos);
  CHECK(r.out.find("2 of 2 hosts ok") != std::string::npos);
  // One at a time: the second job was created after the first finished.
  HttpClient admin(f.server.url(), f.server.token());
  Json j1 = ParseJson(admin.Do("GET", "/api/v1/nodes/web01/jobs")->body).value()["jobs"][0];
  Json j2 = ParseJson(admin.Do("GET", "/api/v1/nodes/web02/jobs")->body).value()["jobs"][0];
  CHECK(j2["created_ms"].get<int64_t>() >= j1["updated_ms"].get<int64_t>());
  auto none = f.server.Kiln({"node", "run", "--class", "NOSUCH", "-c", "true"});
  CHECK(none.exit_code != 0);
  CHECK(none.err.find("no node has class NOSUCH") != std::string::npos);
}

TEST_CASE("jobs: a hanging command is cut off, others finish, and only the admin may queue") {
  Fleet f;
  auto r = f.server.Kiln({"node", "run", "web01", "web02", "--timeout", "1", "-c",
                          "test -e etc/motd && sleep 30; echo fine"});
  INFO(r.out << r.err);
  CHECK(r.exit_code == 1);
  size_t timeouts = 0, at = 0;
  while ((at = r.out.find("timed out after 1 s", at)) != std::string::npos) ++timeouts, ++at;
  CHECK(timeouts == 2);
  auto ok = f.server.Kiln({"node", "run", "web01", "-c", "echo fine"});
  CHECK(ok.exit_code == 0);

  HttpClient admin(f.server.url(), f.server.token());
  HttpClient web01(f.server.url(), f.EnrollWeb01());
  auto denied = web01.Do("POST", "/api/v1/nodes/web01/jobs",
                         Json{{"kind", "run"}, {"args", {{"command", "id"}}}}.dump(),
                         {.content_type = "application/json"});
  CHECK(denied->status == 403);
  auto bad = admin.Do("POST", "/api/v1/nodes/web01/jobs", Json{{"kind", "dance"}}.dump(),
                      {.content_type = "application/json"});
  CHECK(bad->status == 400);
  CHECK(bad->body.find("is not run, update, rollback, diff or capture") != std::string::npos);
  auto noupd = admin.Do("POST", "/api/v1/nodes/web01/jobs",
                        Json{{"kind", "update"}, {"args", {{"image", "web"}}}}.dump(),
                        {.content_type = "application/json"});
  CHECK(noupd->status == 400);
  CHECK(f.server.Kiln({"node", "update", "web01", "--to", "web"}).exit_code != 0);
}

TEST_CASE("an update leaves the host's own paths alone and tells its story as events") {
  Fleet f;
  std::string r1 = f.work.Sub("web01");
  // What makes web01 itself: its name, a class-var exclusion, an --exclude.
  Put(r1 + "/etc/hostname", "web01\n");
  Put(r1 + "/etc/nginx/conf.d/local.conf", "worker_connections 4096;\n");
  Put(r1 + "/opt/app/tls.pem", "web01's key\n");
  // Version 5 ships all three, and a new release file.
  Put(f.work.Sub("tree/etc/hostname"), "golden\n");
  Put(f.work.Sub("tree/etc/nginx/conf.d/local.conf"), "worker_connections 512;\n");
  Put(f.work.Sub("tree/opt/app/tls.pem"), "the image's key\n");
  Put(f.work.Sub("tree/etc/kiln-release"), "web 5\n");
  f.Capture("v5");
  auto up = f.server.Kiln({"node", "update", "web01", "--to", "web@5", "--exclude", "*.pem"});
  INFO(up.out << up.err);
  REQUIRE(up.exit_code == 0);
  CHECK(up.out.find("kept as they were") != std::string::npos);
  CHECK(ReadOr(r1 + "/etc/kiln-release") == "web 5\n");
  CHECK(ReadOr(r1 + "/etc/hostname") == "web01\n");
  CHECK(ReadOr(r1 + "/etc/nginx/conf.d/local.conf") == "worker_connections 4096;\n");
  CHECK(ReadOr(r1 + "/opt/app/tls.pem") == "web01's key\n");
  // Without the exclusions the same update would have replaced them.
  auto other = f.server.Kiln({"node", "update", "web02", "--to", "web@5"});
  REQUIRE(other.exit_code == 0);
  CHECK(ReadOr(f.work.Sub("web02/opt/app/tls.pem")) == "the image's key\n");
  // The class variable holds for every WEB host: kept even where absent.
  CHECK(!fs::exists(f.work.Sub("web02/etc/nginx/conf.d/local.conf")));

  // The story, in order, under the node's events; the record follows.
  HttpClient admin(f.server.url(), f.server.token());
  auto ev = admin.Do("GET", "/api/v1/nodes/web01/events");
  REQUIRE(ev.ok());
  std::vector<std::string> kinds;
  std::string run;
  const Json events = ParseJson(ev->body).value();
  for (const Json& e : events["events"]) {
    if (e["run"].get<std::string>().rfind("update-", 0) != 0) continue;
    run = e["run"];
    kinds.push_back(e["event"]["kind"]);
    if (e["event"]["kind"] == "phase") CHECK(e["event"]["phase"] == "update");
    if (e["event"]["kind"] == "result") CHECK(e["event"]["ok"] == true);
  }
  REQUIRE(!kinds.empty());
  CHECK(kinds.front() == "phase");
  CHECK(kinds.back() == "result");
  CHECK(std::count(kinds.begin(), kinds.end(), "progress") >= 1);
  Json node = ParseJson(admin.Do("GET", "/api/v1/nodes/web01")->body).value();
  CHECK(node["state"] == "installed");
  CHECK(node["installed_image"] == "web@5");
  // The journal of a delivered run does not pile up on the host.
  CHECK(!fs::exists(r1 + "/var/lib/kiln-agent/runs/" + run));

  // A failed update: the story says so, the record says what it still runs.
  auto bad = f.server.Kiln({"node", "update", "web01", "--to", "web@99"});
  CHECK(bad.exit_code == 1);
  node = ParseJson(admin.Do("GET", "/api/v1/nodes/web01")->body).value();
  CHECK(node["state"] == "installed");
  CHECK(node["installed_image"] == "web@5");
  CHECK(node.value("state_message", "").find("update failed") != std::string::npos);

  // Bad globs are refused before any host sees them.
  auto job = admin.Do("POST", "/api/v1/nodes/web01/jobs",
                      Json{{"kind", "update"},
                           {"args", {{"image", "web"}, {"version", "5"}, {"excludes", {"", 3}}}}}
                          .dump(),
                      {.content_type = "application/json"});
  CHECK(job->status == 400);
  CHECK(job->body.find("args.excludes[0]") != std::string::npos);
}

TEST_CASE("the server goes away during an update: the host ends whole, and the agent reconnects") {
  Fleet f;
  std::string r1 = f.work.Sub("web01");
  // A long stream: random bytes do not compress.
  const std::string big = Noise(24 << 20, 0x9E3779B97F4A7C15ull);
  Put(f.work.Sub("tree/usr/share/big"), big);
  Put(f.work.Sub("tree/etc/kiln-release"), "web 5\n");
  f.Capture("v5");
  HttpClient admin(f.server.url(), f.server.token());
  auto job =
      admin.Do("POST", "/api/v1/nodes/web01/jobs",
               Json{{"kind", "update"}, {"args", {{"image", "web"}, {"version", "5"}}}}.dump(),
               {.content_type = "application/json"});
  REQUIRE(job->status == 201);
  std::string id = ParseJson(job->body).value()["id"];
  // Kill the server as soon as the agent has taken the job.
  REQUIRE(WaitUntil([&] {
    auto g = admin.Do("GET", "/api/v1/nodes/web01/jobs/" + id);
    return g.ok() && g->body.find("\"running\"") != std::string::npos;
  }));
  std::string port = Split(f.server.url(), ':').back();
  f.server.process().Signal(SIGKILL);
  REQUIRE(f.server.process().Wait() >= 0);
  ::usleep(1500 * 1000);
  // Whatever the agent managed meanwhile, the host is one version or the other.
  std::string mid = ReadOr(r1 + "/etc/kiln-release");
  CHECK((mid == "web 3\n" || mid == "web 5\n"));
  KilnServer again(f.server.data_dir(),
                   {"--space", kExamples + "/space", "--listen", "127.0.0.1:" + port});
  HttpClient back(again.url(), again.token());
  Json done;
  REQUIRE(WaitUntil(
      [&] {
        auto g = back.Do("GET", "/api/v1/nodes/web01/jobs/" + id);
        done = g.ok() ? ParseJson(g->body).value_or(Json()) : Json();
        return done.value("state", "") == "done" || done.value("state", "") == "failed";
      },
      std::chrono::seconds(120)));
  INFO(done.dump());
  std::string release = ReadOr(r1 + "/etc/kiln-release");
  if (done["state"] == "done") {
    CHECK(release == "web 5\n");
    CHECK(ReadOr(r1 + "/usr/share/big") == big);
    CHECK(f.Config("web01")["image"] == "web@5");
  } else {
    CHECK(release == "web 3\n");
    CHECK(!fs::exists(r1 + "/usr/share/big"));
    CHECK(f.Config("web01")["image"] == "web@3");
  }
  // The daemon's session is back: the node shows its live agent again.
  CHECK(WaitUntil([&] {
    auto g = back.Do("GET", "/api/v1/coord/data/kiln/nodes/web01/agent");
    return g.ok() && g->status == 200;
  }));
}
