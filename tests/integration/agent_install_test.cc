// kiln-agent dirinstall driven as an operator would: a real `kiln serve`
// with examples/space, an image captured with `kiln image capture`, the
// agent binary, and checks through the HTTP API and the tree it wrote.

#include <fmt/format.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

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
const char* kWeb01Mac = "52:54:00:12:34:56";

void Put(const std::string& path, const std::string& content, mode_t mode = 0644) {
  fs::create_directories(fs::path(path).parent_path());
  REQUIRE(WriteFileAtomic(path, content, mode).ok());
}

// A tiny system: static busybox as /bin/sh (so scripts can chroot into it),
// the files examples/space's WEB scripts touch, users for the class files.
void MakeSystemTree(const std::string& root) {
  fs::create_directories(root + "/bin");
  fs::copy_file("/bin/busybox", root + "/bin/busybox");
  for (const char* app : {"sh", "ln", "rm", "cp", "mkdir", "cat", "echo", "chown"})
    fs::create_symlink("busybox", root + "/bin/" + app);
  Put(root + "/etc/passwd",
      "root:x:0:0:root:/root:/bin/sh\nwww-data:x:33:33::/var/www:/bin/false\n");
  Put(root + "/etc/group", "root:x:0:\nwww-data:x:33:\n");
  Put(root + "/etc/motd", "the image's motd\n");
  Put(root + "/etc/ssh/ssh_host_ed25519_key", "not a real key\n", 0600);
  Put(root + "/usr/share/zoneinfo/UTC", "TZif2 UTC\n");
  Put(root + "/usr/share/doc/kiln/README", std::string(300000, 'r'));
  fs::create_directories(root + "/etc/nginx/sites-available");
  fs::create_directories(root + "/etc/nginx/sites-enabled");
  fs::create_directories(root + "/tmp");
  fs::create_directories(root + "/var/log");
  fs::create_directories(root + "/etc/systemd/system");
}

// The server, with examples/space (or a copy) and web@1..3 captured.
struct Site {
  TempDir work;
  std::string space;
  std::unique_ptr<KilnServer> server;

  explicit Site(bool copy_space = false) {
    space = kExamples + "/space";
    if (copy_space) {
      space = work.Sub("space");
      fs::copy(kExamples + "/space", space, fs::copy_options::recursive);
    }
    server = std::make_unique<KilnServer>(std::vector<std::string>{"--space", space});
    MakeSystemTree(work.Sub("tree"));
    for (int v = 1; v <= 3; ++v) {
      Put(work.Sub("tree/etc/kiln-release"), "web " + std::to_string(v) + "\n");
      auto r = server->Kiln({"image", "capture", "web", "--from-dir", work.Sub("tree")});
      INFO(r.out << r.err);
      REQUIRE(r.exit_code == 0);
    }
    auto r = server->Kiln({"node", "add", "web01", "--mac", kWeb01Mac});
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
  }

  RunResult DirInstall(const std::string& node, const std::string& root,
                       std::vector<std::string> extra = {}) {
    std::vector<std::string> argv = {KILN_AGENT_EXE, "dirinstall",
                                     "--server",     server->url(),
                                     "--root",       root,
                                     "--state",      work.Sub("state-" + node),
                                     "--log",        work.Sub(node + ".log"),
                                     "--facts",      kExamples + "/facts/" + node + ".json"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return Run(argv, {}, std::chrono::seconds(120));
  }
  Json Get(const std::string& path) {
    auto j = server->Client().Get(path);
    INFO(path << ": " << j.status().ToString());
    REQUIRE(j.ok());
    return *j;
  }
};

std::string ReadOr(const std::string& path) {
  return ReadFile(path).value_or("<missing>");
}

}  // namespace

TEST_CASE(
    "dirinstall: the tree is the image plus the class files, scripts ran in order, the story is "
    "told") {
  Site site;
  // `kiln watch` follows the install from before it starts.
  auto watch = Process::Start({KILN_EXE, "watch", "web01", "--until-done", "--json", "--server",
                               site.server->url(), "--token", site.server->token()});
  REQUIRE(watch.ok());
  REQUIRE(WaitUntil([&] { return watch->Stderr().find("following web01") != std::string::npos; }));
  std::string root = site.work.Sub("root");
  auto r =
      site.DirInstall("web01", root, {"--node-token", site.server->token(), "--node", "web01"});
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  REQUIRE(watch->Wait(std::chrono::seconds(30)) == 0);
  std::vector<std::string> watched;
  for (const auto& line : Split(watch->Stdout(), '\n')) {
    auto j = ParseJson(line);
    if (j.ok() && (*j)["event"]["kind"] == "phase") watched.push_back((*j)["event"]["phase"]);
  }
  CHECK(watched == std::vector<std::string>{"plan", "image", "files", "scripts", "finish"});

  // The image: every file of web@3 that no class file or script changes.
  CHECK(ReadOr(root + "/etc/kiln-release") == "web 3\n");
  CHECK(ReadOr(root + "/usr/share/doc/kiln/README") == std::string(300000, 'r'));
  CHECK(fs::is_symlink(root + "/bin/sh"));
  // The class files, from the plan, with their owners and modes.
  Json plan = site.Get("/api/v1/nodes/web01/plan");
  REQUIRE(plan["files"].size() >= 3);
  for (const Json& f : plan["files"]) {
    std::string path = root + f["path"].get<std::string>();
    INFO(path);
    CHECK(ReadOr(path) == f["content"].get<std::string>());
    struct stat st {};
    REQUIRE(::stat(path.c_str(), &st) == 0);
    CHECK(fmt::format("{:04o}", st.st_mode & 07777) == f["mode"].get<std::string>());
  }
  CHECK(ReadOr(root + "/etc/motd").find("web01") != std::string::npos);
  // The scripts ran inside the target, in plan order.
  CHECK(fs::read_symlink(root + "/etc/localtime") == "/usr/share/zoneinfo/UTC");
  CHECK(fs::read_symlink(root + "/etc/nginx/sites-enabled/default") ==
        "/etc/nginx/sites-available/default");
  CHECK(!fs::exists(root + "/etc/ssh/ssh_host_ed25519_key"));
  CHECK(!fs::exists(root + "/tmp/.kiln-scripts/0-10-timezone"));
  // The daemon starts at boot on a systemd target.
  CHECK(ReadOr(root + "/etc/systemd/system/kiln-agent.service")
            .find("ExecStart=/usr/bin/kiln-agent daemon") != std::string::npos);
  CHECK(fs::read_symlink(root + "/etc/systemd/system/multi-user.target.wants/kiln-agent.service") ==
        "../kiln-agent.service");
  // The finish hook ran in the install environment with $target and $KILN_LOG.
  CHECK(ReadOr(root + "/var/log/kiln-install.log").find("running 10-timezone") !=
        std::string::npos);

  // The events tell the whole story, in order, with nothing missing.
  Json ev = site.Get("/api/v1/nodes/web01/events");
  Json events = Json::array();
  for (const Json& e : ev["events"]) events.push_back(e["event"]);
  REQUIRE(events.size() > 5);
  std::vector<std::string> phases, scripts;
  for (size_t i = 0; i < events.size(); ++i) {
    INFO(events[i].dump());
    CHECK(events[i]["seq"].get<uint64_t>() == i + 1);
    if (events[i]["kind"] == "phase") phases.push_back(events[i]["phase"]);
    std::string msg = events[i].value("message", "");
    if (events[i]["kind"] == "log" && StartsWith(msg, "running "))
      scripts.push_back(msg.substr(8, msg.find(' ', 8) - 8));
  }
  CHECK(phases == std::vector<std::string>{"plan", "image", "files", "scripts", "finish"});
  std::vector<std::string> want;
  for (const Json& s : plan["scripts"]) want.push_back(s["name"]);
  want.push_back("finish.DEFAULT");
  CHECK(scripts == want);
  CHECK(events.back()["kind"] == "result");
  CHECK(events.back()["ok"] == true);
  CHECK(events.back()["message"] == "installed web@3");
  Json progress = site.Get("/api/v1/nodes/web01/progress");
  CHECK(progress["seq"] == events.size());

  // The node is installed, boots locally next, and its log is on the server.
  Json node = site.Get("/api/v1/nodes/web01");
  CHECK(node["state"] == "installed");
  CHECK(node["boot"] == "localboot");
  CHECK(node["facts"]["cpu"]["model"] == "Intel(R) Xeon(R) Gold 6338 CPU @ 2.00GHz");
  HttpClient admin(site.server->url(), site.server->token());
  auto log = admin.Do("GET", "/api/v1/nodes/web01/log");
  REQUIRE(log.ok());
  CHECK(log->status == 200);
  CHECK(log->body.find("== scripts: running class scripts in the target") != std::string::npos);
  // The agent's session ended with the install: no live agent, not lost.
  CHECK(admin.Do("GET", "/api/v1/coord/data/kiln/nodes/web01/agent")->status == 404);
}

TEST_CASE(
    "a script that fails stops the install: its output in the log, the node failed, not "
    "installed") {
  Site site(/*copy_space=*/true);
  Put(site.space + "/scripts/WEB/20-broken", "#!/bin/sh\necho 'nginx: config broken'\nexit 3\n",
      0755);
  // The server reloads the space when it changes (the plan needs the
  // node's facts: its disks).
  HttpClient admin(site.server->url(), site.server->token());
  auto facts = admin.Do("PUT", "/api/v1/nodes/web01/facts", ReadOr(kExamples + "/facts/web01.json"),
                        {.content_type = "application/json"});
  REQUIRE(facts->status == 200);
  REQUIRE(WaitUntil([&] {
    auto p = site.server->Client().Get("/api/v1/nodes/web01/plan");
    return p.ok() && p->dump().find("20-broken") != std::string::npos;
  }));
  std::string root = site.work.Sub("root");
  auto r =
      site.DirInstall("web01", root, {"--node-token", site.server->token(), "--node", "web01"});
  CHECK(r.exit_code == 1);
  CHECK(r.err.find("kiln-agent dirinstall: script 20-broken (scripts/WEB/20-broken) exited with 3: "
                   "nginx: config broken") != std::string::npos);
  Json node = site.Get("/api/v1/nodes/web01");
  CHECK(node["state"] == "failed");
  auto log = admin.Do("GET", "/api/v1/nodes/web01/log");
  REQUIRE(log.ok());
  CHECK(log->body.find("nginx: config broken") != std::string::npos);
  Json ev = site.Get("/api/v1/nodes/web01/events");
  CHECK(ev["events"].back()["event"]["kind"] == "result");
  CHECK(ev["events"].back()["event"]["ok"] == false);
  // The finish hook did not run.
  CHECK(!fs::exists(root + "/var/log/kiln-install.log"));
}

TEST_CASE(
    "the agent enrolls with the one-time token and its node token acts for its own node only") {
  Site site;
  REQUIRE(site.server->Kiln({"node", "add", "web02", "--mac", "52:54:00:00:01:02"}).exit_code == 0);
  REQUIRE(site.server->Kiln({"node", "install", "web01"}).exit_code == 0);
  HttpClient anon(site.server->url(), "");
  auto script = anon.Do("GET", std::string("/boot/ipxe?mac=") + kWeb01Mac);
  REQUIRE(script.ok());
  size_t at = script->body.find("kiln.token=");
  REQUIRE(at != std::string::npos);
  std::string token = script->body.substr(at + 11, 32);

  std::string root = site.work.Sub("root");
  auto r = site.DirInstall("web01", root, {"--token", token});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(site.Get("/api/v1/nodes/web01")["state"] == "installed");
  // The same token does not enroll twice.
  auto again = site.DirInstall("web01", site.work.Sub("root2"), {"--token", token});
  CHECK(again.exit_code == 1);
  CHECK(again.err.find("enrollment token is not valid") != std::string::npos);

  // A node token (web01's, from a fresh enrollment) cannot touch web02.
  REQUIRE(site.server->Kiln({"node", "install", "web01"}).exit_code == 0);
  script = anon.Do("GET", std::string("/boot/ipxe?mac=") + kWeb01Mac);
  at = script->body.find("kiln.token=");
  auto e =
      anon.Do("POST", "/api/v1/enroll", Json{{"token", script->body.substr(at + 11, 32)}}.dump(),
              {.content_type = "application/json"});
  REQUIRE(e.ok());
  REQUIRE(e->status == 200);
  HttpClient web01(site.server->url(), ParseJson(e->body)->at("token").get<std::string>());
  CHECK(web01.Do("GET", "/api/v1/nodes/web01/plan")->status == 200);
  CHECK(web01.Do("GET", "/api/v1/nodes/web02/plan")->status == 403);
  Json batch = {{"run", "r1"},
                {"events", Json::array({Json{{"seq", 1}, {"kind", "phase"}, {"phase", "plan"}}})}};
  CHECK(web01
            .Do("POST", "/api/v1/nodes/web02/events", batch.dump(),
                {.content_type = "application/json"})
            ->status == 403);
  CHECK(web01
            .Do("PUT", "/api/v1/nodes/web02/facts", "{\"schema\":1}",
                {.content_type = "application/json"})
            ->status == 403);
  CHECK(web01.Do("POST", "/api/v1/nodes/web02/session", "{}", {.content_type = "application/json"})
            ->status == 403);
  CHECK(web01.Do("PUT", "/api/v1/nodes/web02/log?run=r1", "x", {.content_type = "text/plain"})
            ->status == 403);
  CHECK(
      web01.Do("POST", "/api/v1/nodes/web02/installed", "{}", {.content_type = "application/json"})
          ->status == 403);
  CHECK(site.Get("/api/v1/nodes/web02")["state"] != "installed");
}

TEST_CASE(
    "the server dies and comes back mid-install: the agent carries on and no event is lost or "
    "reordered") {
  Site site(/*copy_space=*/true);
  // A hook holds the install just before the image phase until the test
  // has killed the server.
  std::string go = site.work.Sub("go");
  Put(site.space + "/hooks/image.DEFAULT",
      "#!/bin/sh\nwhile [ ! -e " + go + " ]; do sleep 0.05; done\n", 0755);
  HttpClient admin(site.server->url(), site.server->token());
  REQUIRE(admin
              .Do("PUT", "/api/v1/nodes/web01/facts", ReadOr(kExamples + "/facts/web01.json"),
                  {.content_type = "application/json"})
              ->status == 200);
  REQUIRE(WaitUntil([&] {
    auto p = site.server->Client().Get("/api/v1/nodes/web01/plan");
    return p.ok() && p->dump().find("hooks/image.DEFAULT") != std::string::npos;
  }));
  std::string root = site.work.Sub("root");
  auto agent =
      Process::Start({KILN_AGENT_EXE, "dirinstall", "--server", site.server->url(), "--root", root,
                      "--state", site.work.Sub("state"), "--log", site.work.Sub("web01.log"),
                      "--facts", kExamples + "/facts/web01.json", "--node-token",
                      site.server->token(), "--node", "web01", "--session-timeout-ms", "3000"});
  REQUIRE(agent.ok());
  REQUIRE(WaitUntil(
      [&] { return agent->Stderr().find("running image.DEFAULT") != std::string::npos; }));

  std::string port = Split(site.server->url(), ':').back();
  site.server->process().Signal(SIGKILL);
  REQUIRE(site.server->process().Wait() >= 0);
  Put(go, "");
  // The agent now reports and deploys against a dead server; bring it back
  // on the same address with the same data.
  REQUIRE(WaitUntil([&] { return agent->Stderr().find("==> image") != std::string::npos; }));
  ::usleep(500 * 1000);
  KilnServer again(site.server->data_dir(),
                   {"--space", site.space, "--listen", "127.0.0.1:" + port});
  int agent_exit = agent->Wait(std::chrono::seconds(120));
  INFO(agent->Stderr());
  REQUIRE(agent_exit == 0);

  CHECK(ReadOr(root + "/etc/kiln-release") == "web 3\n");
  auto ev = again.Client().Get("/api/v1/nodes/web01/events");
  REQUIRE(ev.ok());
  std::vector<std::string> phases;
  uint64_t seq = 0;
  for (const Json& e : (*ev)["events"]) {
    CHECK(e["event"]["seq"].get<uint64_t>() == ++seq);
    if (e["event"]["kind"] == "phase") phases.push_back(e["event"]["phase"]);
  }
  CHECK(phases == std::vector<std::string>{"plan", "image", "files", "scripts", "finish"});
  CHECK((*ev)["events"].back()["event"]["ok"] == true);
  auto node = again.Client().Get("/api/v1/nodes/web01");
  CHECK((*node)["state"] == "installed");
}

TEST_CASE("the installed system's daemon reports in with the image it runs") {
  Site site;
  std::string root = site.work.Sub("root");
  auto r =
      site.DirInstall("web01", root, {"--node-token", site.server->token(), "--node", "web01"});
  REQUIRE(r.exit_code == 0);
  std::string conf = root + "/etc/kiln/agent.json";
  struct stat st {};
  REQUIRE(::stat(conf.c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0600);
  Json c = ParseJson(ReadOr(conf)).value();
  CHECK(c["node"] == "web01");
  CHECK(c["image"] == "web@3");
  CHECK(c["server"] == site.server->url());

  auto daemon =
      Process::Start({KILN_AGENT_EXE, "daemon", "--config", conf, "--session-timeout-ms", "2000"});
  REQUIRE(daemon.ok());
  HttpClient admin(site.server->url(), site.server->token());
  Json agent;
  REQUIRE(WaitUntil([&] {
    auto g = admin.Do("GET", "/api/v1/coord/data/kiln/nodes/web01/agent");
    if (!g.ok() || g->status != 200) return false;
    auto j = ParseJson(g->body);
    if (!j.ok()) return false;
    agent = ParseJson((*j).value("data", "{}")).value_or(Json());
    return true;
  }));
  CHECK(agent["mode"] == "daemon");
  CHECK(agent["image"] == "web@3");
  auto show = site.server->Kiln({"node", "show", "web01"});
  CHECK(show.out.find("agent            daemon (image web@3") != std::string::npos);
  CHECK(show.out.find("last event       #") != std::string::npos);
  daemon->Signal(SIGTERM);
  CHECK(daemon->Wait() == 0);
  CHECK(admin.Do("GET", "/api/v1/coord/data/kiln/nodes/web01/agent")->status == 404);
  CHECK(site.Get("/api/v1/nodes/web01")["state"] == "installed");

  // A broken configuration is named.
  REQUIRE(WriteFileAtomic(site.work.Sub("bad.json"), "{\"server\": \"x\"}", 0600).ok());
  auto bad = Run({KILN_AGENT_EXE, "daemon", "--config", site.work.Sub("bad.json")});
  CHECK(bad.exit_code == 1);
  CHECK(bad.err.find("bad.json") != std::string::npos);
  CHECK(bad.err.find("node") != std::string::npos);
}

TEST_CASE("an unknown machine boots discover, and its agent registers it with its facts") {
  KilnServer server;
  HttpClient anon(server.url(), "");
  const std::string mac = "52:54:00:aa:bb:cc";
  // The first boot: kiln records the MAC and sends the machine to discover.
  std::string script;
  REQUIRE(WaitUntil([&] {
    auto r = anon.Do("GET", "/boot/ipxe?mac=" + mac);
    script = r.ok() ? r->body : "";
    return script.find("kiln.mode=discover") != std::string::npos &&
           script.find("kiln.token=") != std::string::npos;
  }));
  size_t at = script.find("kiln.token=");
  std::string token = script.substr(at + 11, 32);
  auto r = Run({KILN_AGENT_EXE, "discover", "--server", server.url(), "--token", token, "--facts",
                kExamples + "/facts/gpu01.json"});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(r.out.find("registered as node ") == 0);
  auto ls = server.Kiln({"node", "ls", "--json"});
  REQUIRE(ls.exit_code == 0);
  Json nodes = ParseJson(ls.out).value()["nodes"];
  REQUIRE(nodes.size() == 1);
  CHECK(nodes[0]["macs"][0] == mac);
  CHECK(nodes[0]["facts"]["schema"] == 1);
  CHECK(nodes[0]["facts"]["cpu"]["model"] ==
        ParseJson(ReadOr(kExamples + "/facts/gpu01.json")).value()["cpu"]["model"]);
  // The token was for one use.
  auto again = Run({KILN_AGENT_EXE, "discover", "--server", server.url(), "--token", token,
                    "--facts", kExamples + "/facts/gpu01.json"});
  CHECK(again.exit_code == 1);
}

TEST_CASE("an install wave: max-parallel nodes install at once, the others wait their turn") {
  Site site;
  for (const char* n : {"web02", "web03"})
    REQUIRE(site.server->Kiln({"node", "add", n, "--mac", std::string("52:54:00:00:03:0") + n[4]})
                .exit_code == 0);
  auto q = site.server->Kiln({"node", "install", "web01", "web02", "web03", "--max-parallel", "2"});
  INFO(q.out << q.err);
  REQUIRE(q.exit_code == 0);
  CHECK(q.out.find("at most 2 install at once") != std::string::npos);
  for (const char* n : {"web01", "web02", "web03"})
    CHECK(site.Get(std::string("/api/v1/nodes/") + n)["state"] == "queued");

  HttpClient anon(site.server->url(), "");
  auto script = [&](const std::string& mac) {
    auto s = anon.Do("GET", "/boot/ipxe?mac=" + mac);
    REQUIRE(s.ok());
    return s->body;
  };
  const std::string m1 = kWeb01Mac, m2 = "52:54:00:00:03:02", m3 = "52:54:00:00:03:03";
  std::string s1 = script(m1);
  CHECK(s1.find("kiln.token=") != std::string::npos);
  CHECK(script(m2).find("kiln.token=") != std::string::npos);
  // The third waits, without a token, and is told why.
  std::string s3 = script(m3);
  INFO(s3);
  CHECK(s3.find("kiln.token=") == std::string::npos);
  CHECK(s3.find("2 of 2 installing") != std::string::npos);
  CHECK(s3.find("sleep 30") != std::string::npos);
  // A node that has its slot keeps it when it asks again.
  CHECK(script(m1).find("kiln.token=") != std::string::npos);
  CHECK(script(m3).find("kiln.token=") == std::string::npos);

  // web01 installs for real; its slot goes to the waiting web03.
  std::string token = s1.substr(s1.find("kiln.token=") + 11, 32);
  auto r = site.DirInstall("web01", site.work.Sub("root"), {"--token", token});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(site.Get("/api/v1/nodes/web01")["state"] == "installed");
  CHECK(script(m3).find("kiln.token=") != std::string::npos);
  // Installed nodes leave the wave: web01 boots its disk now.
  CHECK(script(m1).find("exit") != std::string::npos);

  // A plain `node install` takes a node out of its wave.
  REQUIRE(site.server->Kiln({"node", "install", "web02"}).exit_code == 0);
  CHECK(site.Get("/api/v1/nodes/web02").value("wave", Json()).is_null());

  // Bad waves are refused, naming what is wrong.
  auto bad = site.server->Kiln({"node", "install", "web02", "--max-parallel", "-3"});
  CHECK(bad.exit_code != 0);
  HttpClient admin(site.server->url(), site.server->token());
  auto zero = admin.Do("POST", "/api/v1/nodes/web02/install",
                       Json{{"wave", "w-1"}, {"max_parallel", 0}}.dump(),
                       {.content_type = "application/json"});
  CHECK(zero->status == 400);
  CHECK(zero->body.find("max_parallel") != std::string::npos);
  auto odd = admin.Do("POST", "/api/v1/nodes/web02/install",
                      Json{{"wave", "../x"}, {"max_parallel", 2}}.dump(),
                      {.content_type = "application/json"});
  CHECK(odd->status == 400);
  CHECK(odd->body.find("wave") != std::string::npos);
}
