// Plan resolution: class order, later-wins merging, files, substitution,
// the image, scripts and hooks, and the explanation of every decision.

#include "classes/resolver.h"

#include <catch2/catch.hpp>
#include <thread>

#include "classes/plan_text.h"
#include "common/file_util.h"
#include "tests/classes/space_builder.h"

using namespace kiln;
using namespace kiln::classes;
using namespace kiln::test;

namespace {

NodeRecord ExampleNode(const std::string& host) {
  auto text = ReadFile(std::string(KILN_SOURCE_DIR) + "/examples/facts/" + host + ".json");
  REQUIRE(text.ok());
  auto rec = NodeFromJson({{"id", host}, {"facts", *ParseJson(*text)}});
  REQUIRE(rec.ok());
  return *rec;
}

std::shared_ptr<const Space> Example() {
  Diagnostics d;
  auto s = LoadSpace(std::string(KILN_SOURCE_DIR) + "/examples/space", &d);
  REQUIRE(s);
  return s;
}

const Decision* Find(const Plan& p, const std::string& what, const std::string& subject,
                     size_t nth = 0) {
  for (const auto& d : p.explain)
    if (d.what == what && d.subject == subject && nth-- == 0) return &d;
  return nullptr;
}

}  // namespace

TEST_CASE("class order: DEFAULT, rules in file order, hosts file, explicit, hostname, LAST") {
  SpaceBuilder b({{"class/20-b.lua", "add('DB')\n"},
                  {"class/10-a.lua", "add('WEB', 'GPU')\n"},
                  {"class/30-c.lua", "remove('GPU')\nadd('WEB')\n"},
                  {"hosts/web01", "EXTRA\n"}});
  Resolver r(b.Load());
  NodeRecord n = TestNode();
  n.classes = {"GPU"};
  Plan p;
  REQUIRE(ResolveError(r, n, &p, true) == "");
  CHECK(p.classes ==
        std::vector<std::string>{"DEFAULT", "WEB", "DB", "EXTRA", "GPU", "web01", "LAST"});
  const Decision* removed = Find(p, "class", "GPU", 1);
  REQUIRE(removed);
  CHECK(removed->action == "removed");
  CHECK(removed->loc.ToString() == "class/30-c.lua:1");
  CHECK(removed->line_text == "remove('GPU')");
  const Decision* kept = Find(p, "class", "WEB", 1);
  REQUIRE(kept);
  CHECK(kept->action == "kept");
  CHECK(kept->note == "already present; it keeps its earlier place");
  CHECK(Find(p, "class", "EXTRA")->loc.ToString() == "hosts/web01:1");
  CHECK(Find(p, "class", "GPU", 2)->note == "explicit class on the node record");
}

TEST_CASE("explicit classes and hostnames are checked") {
  SpaceBuilder b({});
  Resolver r(b.Load());
  NodeRecord n = TestNode();
  n.classes = {"NOPE"};
  CHECK(ResolveError(r, n) ==
        "node web01: explicit class \"NOPE\" is not declared in classes.list");
  n.classes = {};
  n.hostname = "Web_01";
  CHECK(ResolveError(r, n) == "node web01: hostname \"Web_01\" is not a short lower-case hostname");
  CHECK(NodeFromJson(
            {{"id", "x"}, {"facts", {{"disks", {{{"name", "sda"}, {"size_bytes", "big"}}}}}}})
            .status()
            .message() ==
        "node record: facts.disks[0].size_bytes: expected an unsigned integer, got string");
  CHECK(NodeFromJson({{"id", "x"}, {"macs", {"nope"}}}).status().message() ==
        "node record: \"nope\" is not a MAC address");
}

TEST_CASE("variables: later classes override and extend earlier ones") {
  SpaceBuilder b(
      {{"class/10.lua", "add('WEB')\n"},
       {"vars/DEFAULT.lua", "A = 1\nLIST = {'a'}\nGONE = 'x'\nMAP = {k = 'v'}\n"},
       {"vars/WEB.lua", "A = A + 1\ntable.insert(LIST, 'b')\nGONE = nil\nB = var('NOPE') == nil\n"},
       {"vars/web01.lua", "C = MAP.k .. '!'\n"},
       {"hosts/web01", ""}});
  Resolver r(b.Load());
  Plan p;
  REQUIRE(ResolveError(r, TestNode(), &p, true) == "");
  CHECK(p.vars.at("A").value == 2);
  CHECK(p.vars.at("A").cls == "WEB");
  CHECK(p.vars.at("A").loc.ToString() == "vars/WEB.lua:1");
  REQUIRE(p.vars.at("A").overrode.size() == 1);
  CHECK(p.vars.at("A").overrode[0].value == 1);
  CHECK(p.vars.at("LIST").value == Json({"a", "b"}));
  CHECK(p.vars.at("LIST").loc.ToString() == "vars/WEB.lua:2");
  CHECK_FALSE(p.vars.count("GONE"));
  CHECK(p.vars.at("B").value == true);
  CHECK(p.vars.at("C").value == "v!");
  CHECK(p.vars.at("MAP").cls == "DEFAULT");  // read, not changed: not an override
  const Decision* a = Find(p, "variable", "A", 1);
  REQUIRE(a);
  CHECK(a->line_text == "A = A + 1");
  REQUIRE(a->overrode.size() == 1);
  CHECK(a->overrode[0].loc.ToString() == "vars/DEFAULT.lua:1");
}

TEST_CASE("files: the highest class wins, owner, mode and ${VAR} substitution") {
  SpaceBuilder b({{"class/10.lua", "add('WEB')\n"},
                  {"vars/DEFAULT.lua", "NAME = 'kiln'\nN = 3\nON = true\nL = {1}\n"},
                  {"files/etc/motd/DEFAULT", "default\n"},
                  {"files/etc/motd/WEB", "hello ${NAME} ${N} ${ON} $${NAME}\n"},
                  {"files/etc/motd/WEB.attrs", "subst=yes owner=www-data group=adm mode=0600\n"},
                  {"files/etc/motd/DB", "db\n"},
                  {"files/etc/list/WEB", "${L}\n"},
                  {"files/etc/list/WEB.attrs", "subst=yes\n"}});
  Resolver r(b.Load());
  Plan p;
  CHECK(
      ResolveError(r, TestNode(), &p) ==
      "files/etc/list/WEB:1: ${L} is a list (set at vars/DEFAULT.lua:4); only strings, numbers and "
      "booleans substitute\n${L}\n^ near here");
  SpaceBuilder ok({{"class/10.lua", "add('WEB')\n"},
                   {"vars/DEFAULT.lua", "NAME = 'kiln'\nN = 3\nON = true\n"},
                   {"files/etc/motd/DEFAULT", "default\n"},
                   {"files/etc/motd/WEB", "hello ${NAME} ${N} ${ON} $${NAME}\n"},
                   {"files/etc/motd/WEB.attrs", "subst=yes owner=www-data group=adm mode=0600\n"},
                   {"files/etc/motd/DB", "db\n"},
                   {"files/etc/raw/DEFAULT", "${NOT_SUBSTITUTED}\n"}});
  Resolver r2(ok.Load());
  REQUIRE(ResolveError(r2, TestNode(), &p, true) == "");
  REQUIRE(p.files.size() == 2);
  const PlanFile& motd = p.files[0];
  CHECK(motd.path == "/etc/motd");
  CHECK(motd.cls == "WEB");
  CHECK(motd.content == "hello kiln 3 true ${NAME}\n");
  CHECK(motd.owner == "www-data");
  CHECK(motd.mode == 0600);
  REQUIRE(motd.overrode.size() == 1);
  CHECK(motd.overrode[0].cls == "DEFAULT");
  CHECK(p.files[1].content == "${NOT_SUBSTITUTED}\n");

  SpaceBuilder unset({{"files/etc/x/DEFAULT", "a\nb ${MISSING} c\n"},
                      {"files/etc/x/DEFAULT.attrs", "subst=yes\n"}});
  Resolver r3(unset.Load());
  CHECK(ResolveError(r3, TestNode()) ==
        "files/etc/x/DEFAULT:2: ${MISSING}: no class of this node sets variable MISSING\nb "
        "${MISSING} c\n  ^ near here");
}

TEST_CASE("the image comes from the IMAGE variable") {
  SpaceBuilder b({{"vars/DEFAULT.lua", "IMAGE = 'web@3'\n"}});
  Resolver r(b.Load());
  Plan p;
  REQUIRE(ResolveError(r, TestNode(), &p) == "");
  REQUIRE(p.image);
  CHECK(p.image->name == "web");
  CHECK(p.image->version == "3");
  CHECK(p.image->loc.ToString() == "vars/DEFAULT.lua:1");
  SpaceBuilder bad({{"vars/DEFAULT.lua", "\nIMAGE = 'web@'\n"}});
  Resolver r2(bad.Load());
  CHECK(ResolveError(r2, TestNode()) ==
        "vars/DEFAULT.lua:2: IMAGE = \"web@\": an image is \"name\" or \"name@version\" (letters, "
        "digits, '-', "
        "'_', '.')\nIMAGE = 'web@'");
  SpaceBuilder none({});
  Resolver r3(none.Load());
  REQUIRE(ResolveError(r3, TestNode(), &p) == "");
  CHECK_FALSE(p.image);
}

TEST_CASE("scripts run in class order then name order, hooks by phase then class") {
  SpaceBuilder b({{"class/10.lua", "add('WEB')\n"},
                  {"scripts/WEB/05-web", "w\n"},
                  {"scripts/DEFAULT/20-b", "b\n"},
                  {"scripts/DEFAULT/10-a", "a\n"},
                  {"hooks/finish.DEFAULT", "f\n"},
                  {"hooks/partition.WEB", "p\n"},
                  {"hooks/partition.DEFAULT", "p0\n"}});
  Resolver r(b.Load());
  Plan p;
  REQUIRE(ResolveError(r, TestNode(), &p) == "");
  REQUIRE(p.scripts.size() == 3);
  CHECK(p.scripts[0].source == "scripts/DEFAULT/10-a");
  CHECK(p.scripts[1].source == "scripts/DEFAULT/20-b");
  CHECK(p.scripts[2].source == "scripts/WEB/05-web");
  REQUIRE(p.hooks.size() == 3);
  CHECK(p.hooks[0].source == "hooks/partition.DEFAULT");
  CHECK(p.hooks[1].source == "hooks/partition.WEB");
  CHECK(p.hooks[2].source == "hooks/finish.DEFAULT");
}

TEST_CASE("the example space: web01's plan and its explanation read like a story") {
  Resolver r(Example());
  Plan p;
  REQUIRE(ResolveError(r, ExampleNode("web01"), &p, true) == "");
  CHECK(p.classes ==
        std::vector<std::string>{"DEFAULT", "WEB", "RACK_A1", "DEBUG", "web01", "LAST"});
  CHECK(p.image->ref == "web@3");
  CHECK(p.vars.at("NTP_SERVER").value == "10.1.1.123");
  CHECK(p.vars.at("PACKAGES").value.back() == "tcpdump");
  REQUIRE(p.disks.size() == 1);
  CHECK(p.disks[0].parts[2].mount == "/");
  Json j = PlanToJson(p, true);
  std::string text = RenderExplainText(j);
  INFO(text);
  for (const char* line :
       {"  added    WEB       by class/10-tier.lua:4: add(\"WEB\")\n",
        "  added    RACK_A1   by class/30-rack.lua:6: if rack then return \"RACK_\" .. "
        "rack:upper() end\n",
        "  added    DEBUG     by hosts/web01:2 (listed for this host)\n",
        "  IMAGE = \"web@3\" by WEB at vars/WEB.lua:2, overriding \"base@1\" from DEFAULT at "
        "vars/DEFAULT.lua:2\n",
        "  NTP_SERVER = \"10.1.1.123\" by RACK_A1 at vars/RACK_A1.lua:3, overriding \"10.0.0.123\" "
        "from DEFAULT at vars/DEFAULT.lua:5\n",
        "Image: web@3 chosen by WEB at vars/WEB.lua:2, overriding \"base@1\" from DEFAULT\n",
        "  os -> /dev/sda (447.1 GiB, gpt), layout of DEFAULT from disk/DEFAULT:2\n",
        "  /etc/motd from web01: files/etc/motd/web01 root:root 0644, ${VAR} substituted; "
        "overrides DEFAULT, WEB\n",
        "  3. scripts/WEB/10-nginx (WEB)\n"})
    CHECK(text.find(line) != std::string::npos);
  CHECK(j["files"][2]["content"] ==
        "web01: THE CANARY. New images land here first; log level debug.\n");
}

TEST_CASE("the example space: db01 gets two disks, a removed GPU, and rule output") {
  Resolver r(Example());
  Plan p;
  REQUIRE(ResolveError(r, ExampleNode("db01"), &p, true) == "");
  CHECK(p.classes ==
        std::vector<std::string>{"DEFAULT", "DB", "BIGMEM", "RACK_A1", "db01", "LAST"});
  REQUIRE(p.disks.size() == 2);
  CHECK(p.disks[0].device == "/dev/sda");
  CHECK(p.disks[1].device == "/dev/nvme0n1");
  CHECK(p.disks[1].parts[0].device == "/dev/nvme0n1p1");
  CHECK(p.disks[0].overrode[0].cls == "DEFAULT");
  const Decision* gpu = Find(p, "class", "GPU");
  REQUIRE(gpu);
  CHECK(gpu->loc.ToString() == "class/20-hardware.lua:10");
  const Decision* removed = Find(p, "class", "GPU", 1);
  REQUIRE(removed);
  CHECK(removed->loc.ToString() == "class/90-policy.lua:3");
  const Decision* out = Find(p, "output", "class/20-hardware.lua");
  REQUIRE(out);
  CHECK(out->value == "found 1 NVIDIA GPU(s)");
  CHECK(p.hooks[0].source == "hooks/partition.DB");
  Json j = PlanToJson(p, false);
  CHECK_FALSE(j.contains("explain"));
  CHECK(j["mounts"][0]["mount"] == "/");
  CHECK(j["files"][3]["path"] == "/etc/postgresql/15/main/conf.d/kiln.conf");
  CHECK(j["files"][3]["content"] ==
        "# Managed by kiln\nshared_buffers = 65536MB\nlisten_addresses = '*'\n");
}

TEST_CASE("a node whose disk is too small gets a clear error") {
  Resolver r(Example());
  NodeRecord n = ExampleNode("web02");
  n.facts["disks"][0]["size_bytes"] = 16ull << 30;
  CHECK(ResolveError(r, n) ==
        "disk/DEFAULT:2: disk os does not fit on sda (16.0 GiB, 16.0 GiB usable): the partitions "
        "need at least "
        "24.5 GiB (esp 512.0 MiB + bios 1.0 MiB + root 20.0 GiB + swap 4.0 GiB)\n"
        "disk os on=smallest table=gpt\n^ near here");
}

TEST_CASE("resolution is thread-safe and reuses its sandboxes") {
  Resolver r(Example());
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      const char* hosts[] = {"web01", "web02", "db01", "gpu01"};
      NodeRecord n = ExampleNode(hosts[t]);
      for (int i = 0; i < 25; ++i) {
        auto plan = r.Resolve(n);
        if (plan.ok() && plan->hostname == hosts[t]) ++ok;
      }
    });
  for (auto& t : threads) t.join();
  CHECK(ok == 100);
  CHECK(r.sandboxes() <= 4);
}
