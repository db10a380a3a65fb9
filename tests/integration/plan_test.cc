// kiln plan, kiln config check and the plan API, driven as an operator
// would: the binary, a real server with --space, edits while it runs.

#include <catch2/catch.hpp>
#include <filesystem>

#include "common/file_util.h"
#include "common/http_client.h"
#include "common/strings.h"
#include "tests/support/kiln_server.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"

using namespace kiln;
using namespace kiln::test;

namespace {

const std::string kExamples = std::string(KILN_SOURCE_DIR) + "/examples";

std::string CopySpace(const TempDir& t) {
  std::string dst = t.Sub("space");
  std::filesystem::copy(kExamples + "/space", dst, std::filesystem::copy_options::recursive);
  return dst;
}

}  // namespace

TEST_CASE("kiln plan --explain against examples/space reads like a story") {
  auto r = Run({KILN_EXE, "plan", "web01", "--space", kExamples + "/space", "--facts",
                kExamples + "/facts/web01.json", "--explain"});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  for (const char* line :
       {"Plan for web01 from config space ",
        "  added    DEFAULT   every node starts with DEFAULT\n",
        "  added    WEB       by class/10-tier.lua:4: add(\"WEB\")\n",
        "  added    DEBUG     by hosts/web01:2 (listed for this host)\n",
        "  => DEFAULT WEB RACK_A1 DEBUG web01 LAST\n",
        "  GATEWAY = \"10.1.1.1\" by RACK_A1 at vars/RACK_A1.lua:2, overriding \"10.0.0.1\" from "
        "DEFAULT at vars/DEFAULT.lua:7\n",
        "Image: web@3 chosen by WEB at vars/WEB.lua:2, overriding \"base@1\" from DEFAULT\n",
        "    /dev/sda3          40.0 GiB  ext4  /                     disk/DEFAULT:5\n",
        "  /etc/motd from web01: files/etc/motd/web01 root:root 0644, ${VAR} substituted; "
        "overrides DEFAULT, WEB\n",
        "  before finish hooks/finish.DEFAULT (DEFAULT)\n"})
    CHECK(r.out.find(line) != std::string::npos);

  auto db = Run({KILN_EXE, "plan", "db01", "--space", kExamples + "/space", "--facts",
                 kExamples + "/facts/db01.json", "--explain"});
  REQUIRE(db.exit_code == 0);
  CHECK(db.out.find("  removed  GPU       by class/90-policy.lua:3: if has(\"DB\") and "
                    "has(\"GPU\") then remove(\"GPU\") end\n") != std::string::npos);
  CHECK(db.out.find("  class/20-hardware.lua:9: found 1 NVIDIA GPU(s)\n") != std::string::npos);
  CHECK(db.out.find("  disk os: DB's layout overrides DEFAULT's at disk/DEFAULT:2\n") !=
        std::string::npos);
}

TEST_CASE("kiln plan --json is the agent's plan, the summary is short") {
  auto r = Run({KILN_EXE, "plan", "gpu01", "--space", kExamples + "/space", "--facts",
                kExamples + "/facts/gpu01.json", "--json"});
  REQUIRE(r.exit_code == 0);
  auto j = ParseJson(r.out);
  REQUIRE(j.ok());
  CHECK((*j)["kind"] == "kiln.plan");
  CHECK((*j)["version"] == 1);
  CHECK((*j)["classes"] == Json({"DEFAULT", "GPU", "BIGMEM", "RACK_B2", "gpu01", "LAST"}));
  CHECK((*j)["disks"][0]["device"] == "/dev/nvme0n1");  // the USB stick is never chosen
  CHECK((*j)["node"]["macs"] == Json({"52:54:00:12:34:60"}));
  CHECK_FALSE(j->contains("explain"));

  auto s = Run({KILN_EXE, "plan", "web02", "--space", kExamples + "/space", "--facts",
                kExamples + "/facts/web02.json", "--class", "DEBUG"});
  REQUIRE(s.exit_code == 0);
  CHECK(s.out.find("Classes: DEFAULT WEB RACK_B2 DEBUG web02 LAST\n") != std::string::npos);
  CHECK(s.out.find("Image:   web@3\n") != std::string::npos);
}

TEST_CASE("kiln plan names the file and line when the space or the node is wrong") {
  TempDir t;
  std::string space = CopySpace(t);
  WriteTestFile(space + "/vars/WEB.lua",
                "IMAGE = \"web@3\"\nNGINX_WORKERS = facts.cpu.threadz * 2\n");
  auto r = Run(
      {KILN_EXE, "plan", "web01", "--space", space, "--facts", kExamples + "/facts/web01.json"});
  CHECK(r.exit_code == 1);
  CHECK(
      r.err ==
      "kiln plan: vars/WEB.lua:2: attempt to perform arithmetic on a nil value (field 'threadz')\n"
      "NGINX_WORKERS = facts.cpu.threadz * 2\n"
      "                          ^ near here\n");

  WriteTestFile(space + "/vars/WEB.lua", "IMAGE = \"web@3\"\nif x then\n");
  auto syntax = Run(
      {KILN_EXE, "plan", "web01", "--space", space, "--facts", kExamples + "/facts/web01.json"});
  CHECK(syntax.exit_code == 1);
  CHECK(
      syntax.err ==
      "kiln plan: config space " + space +
          " has problems:\nvars/WEB.lua:3: 'end' expected (to close 'if' at line 2) near <eof>\n");
}

TEST_CASE("kiln config check reports every problem at once, with file:line") {
  auto good =
      Run({KILN_EXE, "config", "check", kExamples + "/space", "--facts", kExamples + "/facts"});
  INFO(good.err);
  CHECK(good.exit_code == 0);
  CHECK(good.out ==
        kExamples + "/space: ok (9 classes, 4 rules, 7 files; 12 sample plans resolved)\n");

  TempDir t;
  std::string space = CopySpace(t);
  WriteTestFile(space + "/class/40-loop.lua", "while true do end\n");
  WriteTestFile(space + "/disk/GPU",
                "disk scratch on=nvme\n  part s size=100G fs=xfs mount=/var\n");
  WriteTestFile(space + "/files/etc/motd/WEBB", "typo\n");
  auto bad = Run({KILN_EXE, "config", "check", space});
  CHECK(bad.exit_code == 1);
  CHECK(bad.err ==
        "files/etc/motd/WEBB: class WEBB does not exist (declare it in classes.list)\n"
        "  (while loading the space)\n"
        "kiln config check: " +
            space + ": 1 problem\n");
  std::filesystem::remove(space + "/files/etc/motd/WEBB");
  auto bad2 = Run({KILN_EXE, "config", "check", space, "--json"});
  CHECK(bad2.exit_code == 1);
  auto j = ParseJson(bad2.out);
  REQUIRE(j.ok());
  std::string texts;
  for (const auto& p : (*j)["problems"]) texts += p["text"].get<std::string>() + "\n";
  CHECK(texts ==
        "class/40-loop.lua:1: instruction budget of 10000000 instructions exceeded (a loop that "
        "never ends?)\n");
}

TEST_CASE("the server plans from --space, reloads edits, and survives a broken one") {
  TempDir t;
  std::string space = CopySpace(t);
  KilnServer server({"--space", space, "--space-poll", "100"});
  std::string facts = kExamples + "/facts/web01.json";
  auto plan = [&](const std::string& node, const std::string& facts_file) {
    return server.Kiln({"plan", node, "--facts", facts_file, "--json"});
  };
  auto first = plan("web01", facts);
  INFO(first.err);
  REQUIRE(first.exit_code == 0);
  CHECK((*ParseJson(first.out))["image"]["ref"] == "web@3");

  // Edit a variable file: the next plan shows it.
  WriteTestFile(space + "/vars/WEB.lua", "IMAGE = \"web@4\"\nNGINX_WORKERS = 8\n");
  REQUIRE(WaitUntil([&] {
    auto r = plan("web01", facts);
    return r.exit_code == 0 && (*ParseJson(r.out))["image"]["ref"] == "web@4";
  }));

  // Break it: the error names file and line; plans keep working.
  WriteTestFile(space + "/vars/WEB.lua", "IMAGE = \"web@5\"\nNGINX_WORKERS = = 8\n");
  REQUIRE(WaitUntil([&] {
    auto s = server.Kiln({"status", "--json"});
    auto j = ParseJson(s.out);
    return j.ok() &&
           (*j)["classes"].value("error", "") == "vars/WEB.lua:2: unexpected symbol near '='";
  }));
  auto still = plan("web01", facts);
  REQUIRE(still.exit_code == 0);
  CHECK((*ParseJson(still.out))["image"]["ref"] == "web@4");
  auto status = server.Kiln({"status"});
  CHECK(status.out.find("error=vars/WEB.lua:2: unexpected symbol near '='") != std::string::npos);
  CHECK(status.out.find("state=error (serving the last good space)") != std::string::npos);
  CHECK(server.process().Stderr().find(
            "ERROR classes \"config space has errors; keeping the last good one\" space=" + space +
            " error=\"vars/WEB.lua:2: unexpected symbol near '='\"") != std::string::npos);

  // A fix is picked up again.
  WriteTestFile(space + "/vars/WEB.lua", "IMAGE = \"web@6\"\n");
  REQUIRE(WaitUntil([&] {
    auto r = plan("web01", facts);
    return r.exit_code == 0 && (*ParseJson(r.out))["image"]["ref"] == "web@6";
  }));

  // --explain through the server renders the same story.
  auto story = server.Kiln({"plan", "web01", "--facts", facts, "--explain"});
  CHECK(story.out.find("Image: web@6 chosen by WEB at vars/WEB.lua:1") != std::string::npos);

  // A node the space cannot plan: 400 with file:line.
  TempDir small;
  auto j = *ParseJson(*ReadFile(facts));
  j["disks"][0]["size_bytes"] = 8ull << 30;
  WriteTestFile(small.Sub("tiny.json"), j.dump());
  auto tiny = plan("web09", small.Sub("tiny.json"));
  CHECK(tiny.exit_code == 1);
  CHECK(tiny.err.find("kiln plan: disk/DEFAULT:2: disk os does not fit on sda (8.0 GiB") == 0);
}

TEST_CASE("the plan API: access, bad bodies, unknown nodes, no space") {
  TempDir t;
  KilnServer server({"--space", CopySpace(t)});
  HttpClient anon(server.url(), "");
  auto r = anon.Do("POST", "/api/v1/plan", R"({"node":{"id":"web01"}})",
                   {.content_type = "application/json"});
  REQUIRE(r.ok());
  CHECK(r->status == 401);
  auto api = server.Client();
  auto ok = api.Post(
      "/api/v1/plan?explain=1",
      {{"node",
        {{"id", "web01"}, {"facts", *ParseJson(*ReadFile(kExamples + "/facts/web01.json"))}}}});
  REQUIRE(ok.ok());
  CHECK((*ok).contains("explain"));
  auto bad = api.Post("/api/v1/plan", {{"id", "web01"}});
  CHECK(bad.status().message() == "request body: expected {\"node\": {...}, \"explain\": false}");
  auto bad_host = api.Post("/api/v1/plan", {{"node", {{"id", "Web 01"}}}});
  CHECK(bad_host.status().message() ==
        "node record: hostname \"Web 01\" is not a short lower-case hostname ([a-z0-9-], at most "
        "63)");
  auto node = api.Get("/api/v1/nodes/web01/plan");
  // The inventory answers for GET: a node it does not have is not found.
  CHECK(node.status().code() == Code::kNotFound);
  CHECK(node.status().message() == "no node is named or has the MAC \"web01\"");

  KilnServer bare;
  auto none = bare.Client().Post("/api/v1/plan", {{"node", {{"id", "web01"}}}});
  CHECK(none.status().code() == Code::kUnavailable);
  CHECK(none.status().message() ==
        "this server has no config space (start it with kiln serve --space DIR)");
}

TEST_CASE("a server started on a broken space runs, says why, and plans once it is fixed") {
  TempDir t;
  std::string space = CopySpace(t);
  WriteTestFile(space + "/classes.list", "WEB web\nweb-tier oops\n");
  KilnServer server({"--space", space, "--space-poll", "100"});
  Json node = {
      {"node",
       {{"id", "web01"}, {"facts", *ParseJson(*ReadFile(kExamples + "/facts/web01.json"))}}}};
  auto r = server.Client().Post("/api/v1/plan", node);
  CHECK(r.status().code() == Code::kUnavailable);
  CHECK(r.status().message().find("has errors and no good version to plan with: classes.list:2: "
                                  "\"web-tier\" is not a class name") != std::string::npos);
  std::filesystem::copy_file(kExamples + "/space/classes.list", space + "/classes.list",
                             std::filesystem::copy_options::overwrite_existing);
  CHECK(WaitUntil([&] { return server.Client().Post("/api/v1/plan", node).ok(); }));
}

TEST_CASE("kiln plan and kiln config check explain themselves in --help") {
  auto plan = Run({KILN_EXE, "plan", "--help"});
  CHECK(plan.exit_code == 0);
  for (const char* word :
       {"--space", "--facts", "--explain", "--json", "--class", "Exit status", "Examples"})
    CHECK(plan.out.find(word) != std::string::npos);
  auto check = Run({KILN_EXE, "config", "check", "--help"});
  CHECK(check.exit_code == 0);
  for (const char* word : {"--facts", "--json", "Exit status", "Examples"})
    CHECK(check.out.find(word) != std::string::npos);
  auto serve = Run({KILN_EXE, "serve", "--help"});
  CHECK(serve.out.find("--space") != std::string::npos);
  auto missing = Run({KILN_EXE, "plan"});
  CHECK(missing.exit_code == 2);
  auto no_space = Run({KILN_EXE, "plan", "web01", "--space", "/nonexistent/space"});
  CHECK(no_space.exit_code == 1);
  CHECK(no_space.err ==
        "kiln plan: config space /nonexistent/space has problems:\n/nonexistent/space: config "
        "space not found (not a directory)\n");
  auto bad_facts = Run(
      {KILN_EXE, "plan", "web01", "--space", kExamples + "/space", "--facts", "/nonexistent.json"});
  CHECK(bad_facts.exit_code == 4);  // not found
  CHECK(bad_facts.err.find("kiln plan: ") == 0);
  CHECK(bad_facts.err.find("/nonexistent.json") != std::string::npos);
}
