// The node inventory over the real embedded coordination store: records,
// the MAC index, discovery, adoption, boot targets, enrollment tokens, and
// a second inventory on the same store following the first one's writes.

#include <catch2/catch.hpp>

#include <map>
#include <mutex>

#include "server/coord/coord_store.h"
#include "server/inventory/inventory.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"

using namespace kiln;
using namespace kiln::inventory;
using kiln::test::TempDir;
using kiln::test::WaitUntil;

namespace {

std::unique_ptr<coord::CoordStore> OpenStore(const std::string& dir) {
  coord::CoordOptions o;
  o.url = "embedded:" + dir;
  auto s = coord::CoordStore::Open(o);
  INFO(s.status().ToString());
  REQUIRE(s.ok());
  return std::move(*s);
}

pxe::BootQuery Query(const std::string& mac) {
  pxe::BootQuery q;
  q.mac = *pxe::ParseMac(mac);
  q.client_ip = "10.0.0.9";
  q.via = "pxelinux";
  return q;
}

NodeSpec Web01() {
  NodeSpec s;
  s.name = "web01";
  s.macs = {"52:54:00:00:00:01"};
  s.classes = {"WEB", "DEBIAN"};
  s.image = "web@3";
  return s;
}

struct Tokens {
  std::mutex mu;
  std::map<std::string, std::string> by_node;
  TokenHooks Hooks() {
    return {[this](const std::string& n, const std::string& t) {
              std::lock_guard l(mu);
              by_node[n] = t;
            },
            [this](const std::string& n) {
              std::lock_guard l(mu);
              by_node.erase(n);
            }};
  }
  std::string Of(const std::string& n) {
    std::lock_guard l(mu);
    return by_node.count(n) ? by_node[n] : "";
  }
};

}  // namespace

TEST_CASE("nodes are added, found by name or MAC, listed and removed") {
  TempDir t;
  auto store = OpenStore(t.Sub("coord"));
  auto inv = *Inventory::Open(*store);
  auto n = inv->Add(Web01());
  INFO(n.status().ToString());
  REQUIRE(n.ok());
  CHECK(n->boot == pxe::BootTarget::kLocalboot);  // adding never wipes a machine
  CHECK(n->state == "new");
  CHECK(n->hostname == "web01");
  CHECK(inv->Get("web01")->classes == std::vector<std::string>{"WEB", "DEBIAN"});
  CHECK(inv->Get("52-54-00-00-00-01")->id == "web01");
  CHECK(inv->Get("52:54:00:00:00:01")->id == "web01");
  CHECK(*store->Get("/kiln/macs/525400000001").value().data.data() == 'w');

  NodeSpec b = Web01();
  b.name = "app01";
  b.macs = {"52:54:00:00:00:02", "52:54:00:00:00:03", "525400000002"};
  b.boot = pxe::BootTarget::kInstall;
  auto app = inv->Add(b);
  REQUIRE(app.ok());
  CHECK(app->macs.size() == 2);
  CHECK(!app->enroll_token.empty());
  auto list = inv->List();
  REQUIRE(list.size() == 2);
  CHECK(list[0].id == "app01");
  CHECK(list[1].id == "web01");

  // The API form carries no secrets; the stored one does.
  CHECK(!app->ToJson(false).contains("enroll_token"));
  CHECK(ParseJson(store->Get("/kiln/nodes/app01")->data)->contains("enroll_token"));

  REQUIRE(inv->Remove("52:54:00:00:00:03").ok());
  CHECK(inv->Get("app01").status().code() == Code::kNotFound);
  CHECK(store->Exists("/kiln/macs/525400000002")->has_value() == false);
  CHECK(inv->Remove("app01").message() == "no node is named or has the MAC \"app01\"");
  b.name = "app02";
  CHECK(inv->Add(b).ok());  // its MACs are free again
}

TEST_CASE("bad names, MACs, classes and images get clear errors") {
  TempDir t;
  auto store = OpenStore(t.Sub("coord"));
  auto inv = *Inventory::Open(*store);
  NodeSpec s = Web01();
  s.name = "Web_01";
  CHECK(inv->Add(s).status().message() ==
        "node name \"Web_01\" is not valid: use 1-63 lower-case letters, digits and '-', not "
        "starting or ending with '-'");
  s = Web01();
  s.macs = {"52:54:00:00:00"};
  CHECK(inv->Add(s).status().message() ==
        "\"52:54:00:00:00\" is not a MAC address (expected six hex pairs like 52:54:00:12:34:56)");
  s = Web01();
  s.macs = {};
  CHECK(inv->Add(s).status().message() == "node web01 needs at least one --mac to boot from");
  s = Web01();
  s.classes = {"WEB SERVER"};
  CHECK(inv->Add(s).status().message() ==
        "class name \"WEB SERVER\" is not valid: use 1-64 letters, digits, '_' and '-'");
  s = Web01();
  s.image = "web@";
  CHECK(inv->Add(s).status().code() == Code::kInvalidArgument);
  for (const std::string& bad : {std::string(), std::string("-a"), std::string("a-"),
                                 std::string("a.b"), std::string(64, 'a')})
    CHECK(!ValidateNodeName(bad).ok());
  CHECK(inv->size() == 0);
}

TEST_CASE("names and MACs are unique") {
  TempDir t;
  auto store = OpenStore(t.Sub("coord"));
  auto inv = *Inventory::Open(*store);
  REQUIRE(inv->Add(Web01()).ok());
  CHECK(inv->Add(Web01()).status().message() == "node web01 already exists");
  NodeSpec s = Web01();
  s.name = "web02";
  auto dup = inv->Add(s);
  CHECK(dup.status().code() == Code::kAlreadyExists);
  CHECK(dup.status().message() == "MAC 52:54:00:00:00:01 already belongs to node web01");
}

TEST_CASE("an unknown MAC boots discover and is recorded as a discovered node") {
  TempDir t;
  auto store = OpenStore(t.Sub("coord"));
  auto inv = *Inventory::Open(*store);
  auto d = inv->Resolve(Query("52:54:00:aa:bb:cc"));
  REQUIRE(d.ok());
  CHECK(d->target == pxe::BootTarget::kDiscover);
  CHECK(d->node == "mac-525400aabbcc");
  CHECK(d->token.size() == 32);
  // Asked again before or after the write lands: the same answer.
  CHECK(inv->Resolve(Query("52:54:00:aa:bb:cc"))->token == d->token);
  REQUIRE(WaitUntil([&] { return inv->Get("mac-525400aabbcc").ok(); }));
  auto n = *inv->Get("52:54:00:aa:bb:cc");
  CHECK(n.state == "discovered");
  CHECK(n.extra["first_boot"]["via"] == "pxelinux");
  CHECK(inv->Resolve(Query("52:54:00:aa:bb:cc"))->token == d->token);
  CHECK(store->Get("/kiln/macs/525400aabbcc")->data == "mac-525400aabbcc");
}

TEST_CASE("adding a node with a discovered node's MAC adopts it") {
  TempDir t;
  auto store = OpenStore(t.Sub("coord"));
  auto inv = *Inventory::Open(*store);
  REQUIRE(inv->Resolve(Query("52:54:00:00:00:01")).ok());
  REQUIRE(WaitUntil([&] { return inv->Get("mac-525400000001").ok(); }));
  // The agent reported facts in discover mode.
  auto rec = *ParseJson(store->Get("/kiln/nodes/mac-525400000001")->data);
  rec["facts"] = {{"cpu", {{"count", 4}}}};
  REQUIRE(store->Set("/kiln/nodes/mac-525400000001", rec.dump()).ok());
  REQUIRE(store->Create("/kiln/nodes/mac-525400000001/progress", "{}").ok());
  REQUIRE(WaitUntil([&] { return !inv->Get("mac-525400000001")->facts.empty(); }));

  auto n = inv->Add(Web01());
  INFO(n.status().ToString());
  REQUIRE(n.ok());
  CHECK(n->facts["cpu"]["count"] == 4);
  CHECK(inv->Get("mac-525400000001").status().code() == Code::kNotFound);
  CHECK(inv->Get("52:54:00:00:00:01")->id == "web01");
  CHECK(store->Get("/kiln/macs/525400000001")->data == "web01");
  CHECK(inv->List().size() == 1);
}

TEST_CASE("boot targets change what the MAC boots, at once") {
  TempDir t;
  auto store = OpenStore(t.Sub("coord"));
  auto inv = *Inventory::Open(*store);
  REQUIRE(inv->Add(Web01()).ok());
  auto q = Query("52:54:00:00:00:01");
  CHECK(inv->Resolve(q)->target == pxe::BootTarget::kLocalboot);
  CHECK(inv->Resolve(q)->token.empty());
  REQUIRE(inv->SetBoot("web01", pxe::BootTarget::kInstall).ok());
  auto d = *inv->Resolve(q);
  CHECK(d.target == pxe::BootTarget::kInstall);
  CHECK(d.node == "web01");
  CHECK(d.token.size() == 32);
  REQUIRE(inv->SetBoot("52:54:00:00:00:01", pxe::BootTarget::kRescue).ok());
  CHECK(inv->Resolve(q)->target == pxe::BootTarget::kRescue);
  CHECK(inv->Resolve(q)->token.empty());
  CHECK(inv->SetBoot("nope", pxe::BootTarget::kRescue).status().code() == Code::kNotFound);
}

TEST_CASE("an enrollment token works once and the next boot gets a fresh one") {
  TempDir t;
  auto store = OpenStore(t.Sub("coord"));
  Tokens tokens;
  auto inv = *Inventory::Open(*store, tokens.Hooks());
  REQUIRE(inv->Add(Web01()).ok());
  REQUIRE(inv->SetBoot("web01", pxe::BootTarget::kInstall).ok());
  std::string first = inv->Resolve(Query("52:54:00:00:00:01"))->token;
  auto e = inv->Enroll(first);
  REQUIRE(e.ok());
  CHECK(e->node.id == "web01");
  CHECK(e->node.state == "enrolled");
  CHECK(e->token.size() == 64);
  CHECK(tokens.Of("web01") == e->token);
  auto again = inv->Enroll(first);
  CHECK(again.status().code() == Code::kUnauthenticated);
  CHECK(again.status().message().find("enrollment token is not valid") == 0);
  CHECK(inv->Enroll("").status().code() == Code::kUnauthenticated);
  std::string second = inv->Resolve(Query("52:54:00:00:00:01"))->token;
  CHECK(!second.empty());
  CHECK(second != first);

  auto done = inv->MarkInstalled("web01", "");
  REQUIRE(done.ok());
  CHECK(done->state == "installed");
  CHECK(done->installed_image == "web@3");
  CHECK(inv->Resolve(Query("52:54:00:00:00:01"))->target == pxe::BootTarget::kLocalboot);

  REQUIRE(inv->Remove("web01").ok());
  CHECK(tokens.Of("web01").empty());
}

TEST_CASE("a second inventory on the same store follows the first, and a restart reloads") {
  TempDir t;
  {
    auto store = OpenStore(t.Sub("coord"));
    auto a = *Inventory::Open(*store);
    auto b = *Inventory::Open(*store);
    REQUIRE(a->Add(Web01()).ok());
    REQUIRE(WaitUntil([&] { return b->Get("web01").ok(); }));
    REQUIRE(a->SetBoot("web01", pxe::BootTarget::kInstall).ok());
    REQUIRE(WaitUntil([&] { return b->Get("web01")->boot == pxe::BootTarget::kInstall; }));
    // b's write is seen by a.
    REQUIRE(b->MarkInstalled("web01", "web@4").ok());
    REQUIRE(WaitUntil([&] { return a->Get("web01")->installed_image == "web@4"; }));
    // A record nobody can read is skipped, not fatal.
    REQUIRE(store->Create("/kiln/nodes/broken", "{not json").ok());
  }
  auto store = OpenStore(t.Sub("coord"));
  auto again = Inventory::Open(*store);
  REQUIRE(again.ok());
  CHECK((*again)->Get("web01")->state == "installed");
  CHECK((*again)->size() == 1);
}
