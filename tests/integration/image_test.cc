// Drives images the way an operator does: `kiln serve` and the `kiln image`
// commands, plus the HTTP API where a client could misbehave.

#include <fmt/format.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <thread>

#include "common/file_util.h"
#include "common/http_client.h"
#include "common/strings.h"
#include "imager/codec.h"
#include "imager/image_client.h"
#include "imager/image_store.h"
#include "imager/manifest.h"
#include "imager/scan.h"
#include "imager/stat_cache.h"
#include "imager/zstd_util.h"
#include "tests/imager/tree_fixture.h"
#include "tests/support/kiln_server.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"

using namespace kiln;
using namespace kiln::test;
using namespace kiln::imager::test;

namespace {

Json RunJson(const KilnServer& s, std::vector<std::string> args) {
  args.push_back("--json");
  auto r = s.Kiln(args);
  INFO(fmt::format("kiln {}: exit {}\n{}", fmt::join(args, " "), r.exit_code, r.err));
  REQUIRE(r.exit_code == 0);
  auto j = ParseJson(r.out);
  REQUIRE(j.ok());
  return *j;
}

std::vector<std::string> DiffPaths(const Json& diff) {
  std::vector<std::string> out;
  for (const auto& c : diff["changes"])
    out.push_back(c["change"].get<std::string>() + " " + c["path"].get<std::string>());
  return out;
}

}  // namespace

TEST_CASE(
    "kiln image: capture, log, show, diff, deploy, delta, tag, rollback, export, verify, gc") {
  KilnServer server;
  TempDir t;
  MakeRichTree(t.Sub("src"));
  // Files younger than the stat cache's racy window are hashed every time.
  std::this_thread::sleep_for(std::chrono::milliseconds(2 * imager::kRacyWindowNs / 1'000'000));
  Json c1 = RunJson(server, {"image", "capture", "web", "--from-dir", t.Sub("src"), "--note",
                             "first", "--stat-cache", t.Sub("sc")});
  CHECK(c1["version"] == 1);
  CHECK(c1["objects_sent"] == c1["objects"]);

  Json d1 = RunJson(server, {"image", "deploy", "web", "--to", t.Sub("v1")});
  CHECK(d1["version"] == 1);
  CHECK(RsyncDiff(t.Sub("src"), t.Sub("v1")) == "");

  // Change a few things, capture again: diff names exactly those.
  WriteTestFile(t.Sub("src/etc/hostname"), "changed\n");
  REQUIRE(::chmod(t.Sub("src/usr/bin/tool").c_str(), 0711) == 0);
  REQUIRE(::unlink(t.Sub("src/etc/empty").c_str()) == 0);
  WriteTestFile(t.Sub("src/etc/added"), "new file\n");
  SetMtime(t.Sub("src/etc/hostname"), 1800000000, 1);
  SetMtime(t.Sub("src/etc/added"), 1800000000, 2);
  SetMtime(t.Sub("src/etc"), 1800000000, 3);
  Json c2 = RunJson(
      server, {"image", "capture", "web", "--from-dir", t.Sub("src"), "--stat-cache", t.Sub("sc")});
  CHECK(c2["version"] == 2);
  CHECK(c2["files_hashed"] ==
        3);  // hostname, added, tool (chmod changes ctime); the cache knew the rest
  // Their objects went with the manifest, and the server committed at once.
  CHECK(c2["one_exchange"] == true);
  CHECK(c2["objects_sent"] == 3);
  CHECK(c1["one_exchange"] == false);
  CHECK(c1["streamed"] == true);  // a first capture: objects sent while the tree was read
  CHECK(c2["streamed"] == false);
  Json diff = RunJson(server, {"image", "diff", "web@1", "web@2"});
  CHECK(DiffPaths(diff) == std::vector<std::string>{"changed /etc", "added /etc/added",
                                                    "removed /etc/empty", "changed /etc/hostname",
                                                    "changed /usr/bin/tool"});
  CHECK(diff["changes"][4]["what"] == Json::array({"mode"}));
  auto text = server.Kiln({"image", "diff", "web@1", "web@2"});
  CHECK(text.out.find("~ /etc/hostname (content") != std::string::npos);
  CHECK(text.out.find("~ /usr/bin/tool (mode)") != std::string::npos);
  CHECK(text.out.find("+ /etc/added") != std::string::npos);

  // A delta turns a copy of v1 into v2 exactly.
  RunJson(server, {"image", "deploy", "web@1", "--to", t.Sub("copy")});
  Json dd =
      RunJson(server, {"image", "deploy", "web@2", "--to", t.Sub("copy"), "--from", "1", "--undo"});
  CHECK(dd["from"] == 1);
  CHECK(dd["entries"].get<int>() <= 6);
  CHECK(RsyncDiff(t.Sub("src"), t.Sub("copy"), ".kiln-undo") == "");
  // Undo takes it back to v1.
  auto undo = server.Kiln({"image", "undo", "--root", t.Sub("copy")});
  INFO(undo.err);
  REQUIRE(undo.exit_code == 0);
  CHECK(RsyncDiff(t.Sub("v1"), t.Sub("copy")) == "");

  // Log, show, tags.
  auto log = server.Kiln({"image", "log", "web"});
  CHECK(log.out.find("web@2 (current)") != std::string::npos);
  CHECK(log.out.find("first") != std::string::npos);
  RunJson(server, {"image", "tag", "web@1", "stable"});
  Json show = RunJson(server, {"image", "show", "web@stable"});
  CHECK(show["version"]["version"] == 1);
  CHECK(show["version"]["tags"] == Json::array({"stable"}));
  bool saw_cap = false;
  for (const auto& e : show["entries"])
    if (e["path"] == "/usr/bin/ping") saw_cap = e["xattrs"].contains("security.capability");
  CHECK(saw_cap);

  // Rollback moves the pointer; a deploy of "web" then gives v1 back exactly.
  Json rb = RunJson(server, {"image", "rollback", "web"});
  CHECK(rb["current"] == 1);
  RunJson(server, {"image", "deploy", "web", "--to", t.Sub("copy")});
  CHECK(RsyncDiff(t.Sub("v1"), t.Sub("copy")) == "");
  // The record lives in the coordination store, for every server to share.
  auto znode = server.Kiln({"coord", "get", "/kiln/images/web"});
  INFO(znode.err);
  CHECK(znode.exit_code == 0);
  CHECK(znode.out.find("\"current\":1") != std::string::npos);
  Json ls = RunJson(server, {"image", "ls"});
  CHECK(ls["images"][0]["current"] == 1);
  CHECK(ls["images"][0]["versions"] == 2);
  RunJson(server, {"image", "rollback", "web", "--to", "2"});

  // Export (tar cannot hold the socket), and the archive captures back to
  // the same tree.
  Json ex = RunJson(server, {"image", "export", "web@2", "--out", t.Sub("web2.tar.zst")});
  CHECK(ex["skipped_sockets"] == 1);
  Json c3 = RunJson(server, {"image", "capture", "again", "--from-tar", t.Sub("web2.tar.zst")});
  CHECK(c3["entries"] == c2["entries"].get<int>() - 1);
  RunJson(server, {"image", "deploy", "again", "--to", t.Sub("again")});
  CHECK(RsyncDiff(t.Sub("src"), t.Sub("again"), "tmp/sock") == "");

  // Verify passes; damage an object and it names it.
  Json v = RunJson(server, {"image", "verify"});
  CHECK(v["bad"].empty());
  auto objs = server.Client().Get("/api/v1/images/web/versions/1/objects");
  REQUIRE(objs.ok());
  std::string victim = (*objs)["objects"][1]["digest"];
  std::string path = server.data_dir() + "/images/objects/" + victim.substr(0, 2) + "/" + victim;
  std::string original = *ReadFile(path);
  imager::Compressor comp;
  std::string frame;
  comp.Compress("damaged", &frame);
  REQUIRE(WriteFileAtomic(path, frame).ok());
  auto bad = server.Kiln({"image", "verify", "web@1"});
  CHECK(bad.exit_code == 1);
  CHECK(bad.out.find("BAD " + victim) != std::string::npos);
  // A deploy that needs it fails naming it, and writes no damaged file.
  auto dep = server.Kiln({"image", "deploy", "web@1", "--to", t.Sub("damaged")});
  CHECK(dep.exit_code == 1);
  INFO(dep.err);
  CHECK(dep.err.find(": object " + victim + ": ") != std::string::npos);
  REQUIRE(WriteFileAtomic(path, original).ok());

  // gc --keep 1: v2 (current) and v1 (tagged) stay; untag, then v1 goes.
  Json gc1 = RunJson(server, {"image", "gc", "--keep", "1"});
  CHECK(gc1["versions_dropped"] == 0);
  RunJson(server, {"image", "tag", "web", "stable", "--delete"});
  Json gc2 = RunJson(server, {"image", "gc", "--keep", "1"});
  CHECK(gc2["versions_dropped"] == 1);
  CHECK(gc2["objects_removed"].get<int>() >= 2);
  CHECK(RunJson(server, {"image", "verify"})["bad"].empty());
  RunJson(server, {"image", "deploy", "web", "--to", t.Sub("after-gc")});
  CHECK(RsyncDiff(t.Sub("src"), t.Sub("after-gc")) == "");
}

TEST_CASE("kiln image errors are one line, naming what was wrong") {
  KilnServer server;
  TempDir t;
  auto none = server.Kiln({"image", "deploy", "nope@3", "--to", t.Sub("x")});
  CHECK(none.exit_code == 4);
  CHECK(none.err == "kiln image deploy: no image named \"nope\"\n");
  auto bad_name = server.Kiln({"image", "capture", "Bad/Name", "--from-dir", t.path()});
  CHECK(bad_name.exit_code == 2);
  CHECK(bad_name.err ==
        "kiln image capture: image name \"Bad/Name\" must start with a letter or digit\n");
  auto both = server.Kiln({"image", "capture", "x"});
  CHECK(both.exit_code == 2);
  CHECK(both.err ==
        "kiln image capture: give exactly one of --from-dir DIR, --from-tar FILE or --from-host "
        "NODE\n");
  auto help = server.Kiln({"image", "deploy", "--help"});
  for (const char* w : {"--to", "--from", "--undo", "Examples"})
    CHECK(help.out.find(w) != std::string::npos);
}

TEST_CASE("the server never trusts an upload: wrong bytes are refused and no version appears") {
  KilnServer server;
  TempDir t;
  WriteTestFile(t.Sub("src/f"), "genuine content");
  auto scan = imager::ScanDirectory(t.Sub("src"), {});
  REQUIRE(scan.ok());
  std::string manifest = imager::EncodeManifest(scan->manifest);
  HttpClient http(server.url(), server.token());
  auto begin = http.Do("POST", "/api/v1/images/evil/captures", manifest,
                       {.content_type = "application/octet-stream"});
  REQUIRE(begin.ok());
  REQUIRE(begin->status == 200);
  auto j = ParseJson(begin->body);
  REQUIRE(j.ok());
  std::string id = (*j)["capture"];
  REQUIRE((*j)["missing"].size() == 1);
  auto digest = *imager::ParseDigest((*j)["missing"][0].get<std::string>());
  imager::Compressor comp;
  std::string forged;
  comp.Compress("forged content!", &forged);
  auto up = http.Do("POST", "/api/v1/images/captures/" + id + "/objects",
                    imager::EncodeObjectBatch({{digest, forged}}));
  REQUIRE(up.ok());
  CHECK(up->status == 500);
  CHECK(up->body.find("\"corruption\"") != std::string::npos);
  CHECK(up->body.find(ToHex(digest)) != std::string::npos);
  auto commit = http.Do("POST", "/api/v1/images/captures/" + id + "/commit");
  REQUIRE(commit.ok());
  CHECK(commit->status == 412);
  CHECK(commit->body.find("1 objects are missing") != std::string::npos);
  CHECK(server.Client().Get("/api/v1/images/evil").status().code() == Code::kNotFound);
  // A malformed manifest is refused outright.
  auto junk = http.Do("POST", "/api/v1/images/evil/captures", "KILNMAN\n\x01garbage");
  REQUIRE(junk.ok());
  CHECK(junk->status == 400);
  CHECK(junk->body.find("manifest") != std::string::npos);

  // Objects sent with the manifest (one exchange) are checked the same way.
  std::string path =
      fmt::format("/api/v1/images/evil/captures?manifest_size={}&commit=1", manifest.size());
  auto eager = http.Do("POST", path, manifest + imager::EncodeObjectBatch({{digest, forged}}),
                       {.content_type = "application/octet-stream"});
  REQUIRE(eager.ok());
  CHECK(eager->status == 500);
  CHECK(eager->body.find("\"corruption\"") != std::string::npos);
  CHECK(eager->body.find(ToHex(digest)) != std::string::npos);
  CHECK(server.Client().Get("/api/v1/images/evil").status().code() == Code::kNotFound);
  for (const char* bad : {"manifest_size=99999999", "manifest_size=-1", "manifest_size=x"}) {
    auto r = http.Do("POST", std::string("/api/v1/images/evil/captures?") + bad, manifest,
                     {.content_type = "application/octet-stream"});
    REQUIRE(r.ok());
    CHECK(r->status == 400);
    CHECK(r->body.find("manifest_size") != std::string::npos);
  }
  auto bad_commit = http.Do("POST", "/api/v1/images/evil/captures?commit=yes", manifest,
                            {.content_type = "application/octet-stream"});
  REQUIRE(bad_commit.ok());
  CHECK(bad_commit->status == 400);
  CHECK(bad_commit->body.find("commit") != std::string::npos);
  // The genuine object: the version is made in that one request.
  std::string genuine;
  comp.Compress("genuine content", &genuine);
  auto one = http.Do("POST", path, manifest + imager::EncodeObjectBatch({{digest, genuine}}),
                     {.content_type = "application/octet-stream"});
  REQUIRE(one.ok());
  INFO(one->body);
  CHECK(one->status == 200);
  auto oj = ParseJson(one->body);
  REQUIRE(oj.ok());
  CHECK((*oj)["missing"].empty());
  CHECK((*oj)["version"]["version"] == 1);
  CHECK(server.Client().Get("/api/v1/images/evil").ok());
}

// A first capture sends its objects before its manifest: the capture is
// opened, objects offered by digest (only those offered are taken, each
// verified), the manifest last. Every misuse is refused, naming it.
TEST_CASE("an opened capture takes offered objects, then its manifest, and nothing else") {
  KilnServer server;
  TempDir t;
  WriteTestFile(t.Sub("src/a"), "first file");
  WriteTestFile(t.Sub("src/b"), "second file");
  auto scan = imager::ScanDirectory(t.Sub("src"), {});
  REQUIRE(scan.ok());
  std::string manifest = imager::EncodeManifest(scan->manifest);
  HttpClient http(server.url(), server.token());
  const HttpRequestOptions bin{.content_type = "application/octet-stream"};
  auto post = [&](const std::string& path, std::string_view body = {}) {
    auto r = http.Do("POST", path, body, bin);
    REQUIRE(r.ok());
    return *r;
  };
  // Opening takes no manifest, no body.
  for (auto [bad, named] : {std::pair{"open=2", "open"}, std::pair{"open=1&commit=1", "open"},
                            std::pair{"open=1&manifest_size=3", "manifest_size"}}) {
    auto r = post(std::string("/api/v1/images/op/captures?") + bad);
    CHECK(r.status == 400);
    CHECK(r.body.find(named) != std::string::npos);
  }
  CHECK(post("/api/v1/images/op/captures?open=1", manifest).status == 400);
  CHECK(post("/api/v1/images/bad%20name/captures?open=1").status == 400);
  auto opened = post("/api/v1/images/op/captures?open=1");
  REQUIRE(opened.status == 200);
  std::string id = (*ParseJson(opened.body))["capture"];
  std::string base = "/api/v1/images/captures/" + id;

  Sha256Digest da = Sha256Of("first file"), db = Sha256Of("second file");
  auto digests = [](std::initializer_list<Sha256Digest> ds) {
    std::string body;
    for (const auto& d : ds) body.append(reinterpret_cast<const char*>(d.data()), d.size());
    return body;
  };
  auto bad_offer = post(base + "/offer", digests({da}).substr(0, 31));
  CHECK(bad_offer.status == 400);
  CHECK(bad_offer.body.find("31 bytes") != std::string::npos);
  CHECK(post("/api/v1/images/captures/nosuch/offer", digests({da})).status == 404);
  // Only offered objects are taken.
  imager::Compressor comp;
  std::string fa, fb, forged;
  comp.Compress("first file", &fa);
  comp.Compress("second file", &fb);
  comp.Compress("not the second file", &forged);
  auto unoffered = post(base + "/objects", imager::EncodeObjectBatch({{da, fa}}));
  CHECK(unoffered.status == 400);
  CHECK(unoffered.body.find("offered") != std::string::npos);
  auto offer = post(base + "/offer", digests({da, db}));
  REQUIRE(offer.status == 200);
  CHECK((*ParseJson(offer.body))["missing"].size() == 2);
  // Verified as any upload: a forged one is refused, naming it.
  auto lie = post(base + "/objects", imager::EncodeObjectBatch({{db, forged}}));
  CHECK(lie.status == 500);
  CHECK(lie.body.find(ToHex(db)) != std::string::npos);
  REQUIRE(post(base + "/objects", imager::EncodeObjectBatch({{da, fa}})).status == 200);
  // A commit before the manifest is refused; the manifest then names what
  // is still missing (b, whose upload was refused).
  auto early = post(base + "/commit");
  CHECK(early.status == 412);
  CHECK(early.body.find("no manifest") != std::string::npos);
  CHECK(post(base + "/manifest?commit=yes", manifest).status == 400);
  CHECK(post(base + "/manifest", "KILNMAN\n\x01garbage").status == 400);
  auto given = post(base + "/manifest?commit=1", manifest);
  REQUIRE(given.status == 200);
  auto gj = *ParseJson(given.body);
  CHECK(gj["missing"] == Json::array({ToHex(db)}));
  CHECK(!gj.contains("version"));
  CHECK(post(base + "/manifest", manifest).status == 412);    // given once
  CHECK(post(base + "/offer", digests({db})).status == 412);  // asks by its manifest now
  REQUIRE(post(base + "/objects", imager::EncodeObjectBatch({{db, fb}})).status == 200);
  // Given up, a capture is gone (its staged objects with it).
  auto other = post("/api/v1/images/op/captures?open=1");
  REQUIRE(other.status == 200);
  std::string other_id = (*ParseJson(other.body))["capture"];
  auto aborted = http.Do("DELETE", "/api/v1/images/captures/" + other_id);
  REQUIRE(aborted.ok());
  CHECK(aborted->status == 200);
  CHECK(post("/api/v1/images/captures/" + other_id + "/offer", digests({da})).status == 404);
  CHECK(http.Do("DELETE", "/api/v1/images/captures/" + other_id)->status == 404);
  auto done = post(base + "/commit");
  REQUIRE(done.status == 200);
  CHECK((*ParseJson(done.body))["version"]["version"] == 1);
  RunJson(server, {"image", "deploy", "op", "--to", t.Sub("dst")});
  CHECK(RsyncDiff(t.Sub("src"), t.Sub("dst")) == "");
}

// A capture that fails after its objects went (here: a device node where
// they are refused) gives the server's capture up at once: nothing of it
// stays staged until it would have expired.
TEST_CASE("a streamed capture that fails leaves nothing staged on the server") {
  KilnServer server;
  TempDir t;
  WriteTestFile(t.Sub("src/big"), RandomBytes(20 << 20, 9));
  REQUIRE(::mknod(t.Sub("src/null").c_str(), S_IFCHR | 0600, ::makedev(1, 3)) == 0);
  auto r = server.Kiln(
      {"image", "capture", "refused", "--from-dir", t.Sub("src"), "--no-devices", "--json"});
  CHECK(r.exit_code != 0);
  CHECK(r.err.find("device nodes are not allowed") != std::string::npos);
  auto tmp = Run({"/bin/sh", "-c", "find " + server.data_dir() + "/images/tmp -type f | wc -l"});
  CHECK(tmp.out == "0\n");
  CHECK(server.Client().Get("/api/v1/images/refused").status().code() == Code::kNotFound);
}

TEST_CASE("a deploy resumes after a broken connection without re-sending what arrived") {
  KilnServer server;
  TempDir t;
  WriteTestFile(t.Sub("src/big"), RandomBytes(5 << 20, 4));
  WriteTestFile(t.Sub("src/small"), "small");
  REQUIRE(server.Kiln({"image", "capture", "img", "--from-dir", t.Sub("src")}).exit_code == 0);
  HttpClient http(server.url(), server.token());
  for (uint64_t cut : {uint64_t{10}, uint64_t{100000}, uint64_t{3000001}}) {
    imager::DeployOptions o;
    o.image = "img";
    o.break_after = cut;
    std::string dst = t.Sub("dst" + std::to_string(cut));
    auto r = imager::DeployFromServer(&http, dst, o);
    INFO(r.status().ToString());
    REQUIRE(r.ok());
    CHECK(r->resumes == 1);
    CHECK(r->received_bytes == r->stream_bytes);  // nothing sent twice
    CHECK(RsyncDiff(t.Sub("src"), dst) == "");
  }
  // Objects by digest, served as stored (zstd).
  auto objs = server.Client().Get("/api/v1/images/img/versions/1/objects");
  REQUIRE(objs.ok());
  std::string d = (*objs)["objects"][1]["digest"];
  auto obj = http.Do("GET", "/api/v1/images/objects/" + d);
  REQUIRE(obj.ok());
  CHECK(obj->status == 200);
  CHECK(obj->content_type == "application/zstd");
  imager::Decompressor dec;
  std::string raw;
  REQUIRE(dec.Decompress(obj->body, 1 << 20, &raw, "object").ok());
  CHECK(Sha256Hex(raw) == d);
}

TEST_CASE("a large file goes to the disk directly, also across a resume, --buffered opts out") {
  KilnServer server;
  TempDir t;
  const uint64_t big = (12 << 20) + 4321;  // over the threshold, an unaligned tail
  WriteTestFile(t.Sub("src/disk.img"), RandomBytes(big, 8));
  WriteTestFile(t.Sub("src/small"), "small");
  REQUIRE(server.Kiln({"image", "capture", "img", "--from-dir", t.Sub("src")}).exit_code == 0);
  // The capture's chunks beyond its first 8 MiB went into a pack: these
  // deploys also send frames from inside one (sendfile at an offset).
  CHECK(kiln::test::Run({"/bin/sh", "-c", "ls " + server.data_dir() + "/images/packs"})
            .out.find(".pack") != std::string::npos);
  const uint64_t direct = DirectIoWorks(t.path()) ? big / 4096 * 4096 : 0;
  INFO("O_DIRECT works here: " << (direct > 0));

  Json d = RunJson(server, {"image", "deploy", "img", "--to", t.Sub("direct")});
  CHECK(d["bytes_direct"] == direct);
  CHECK(RsyncDiff(t.Sub("src"), t.Sub("direct")) == "");
  Json b = RunJson(server, {"image", "deploy", "img", "--to", t.Sub("buffered"), "--buffered"});
  CHECK(b["bytes_direct"] == 0);
  CHECK(RsyncDiff(t.Sub("src"), t.Sub("buffered")) == "");

  // The connection breaks in the middle of the large file: the resumed
  // stream continues the same file, still directly, and it comes out whole.
  HttpClient http(server.url(), server.token());
  imager::DeployOptions o;
  o.image = "img";
  o.break_after = 5 << 20;
  auto r = imager::DeployFromServer(&http, t.Sub("resumed"), o);
  INFO(r.status().ToString());
  REQUIRE(r.ok());
  CHECK(r->resumes == 1);
  CHECK(r->apply.bytes_direct == direct);
  CHECK(RsyncDiff(t.Sub("src"), t.Sub("resumed")) == "");
}

// The acceptance test, on a real root filesystem: a Debian 12
// minbase made by debootstrap once and cached (scripts/minbase).
TEST_CASE("a Debian minbase captures, deploys, deltas and rolls back exactly") {
  auto mb = Run({KILN_SOURCE_DIR "/scripts/minbase"}, {}, std::chrono::minutes(10));
  INFO(mb.err);
  REQUIRE(mb.exit_code == 0);
  std::string minbase(Trim(mb.out));
  KilnServer server;
  TempDir t;
  Json c1 =
      RunJson(server, {"image", "capture", "debian", "--from-dir", minbase, "--no-stat-cache"});
  CHECK(c1["entries"].get<int>() > 6000);
  RunJson(server, {"image", "deploy", "debian", "--to", t.Sub("v1")});
  CHECK(RsyncDiff(minbase, t.Sub("v1")) == "");

  // v2: a few files changed in the copy.
  std::string v2 = t.Sub("v1");
  WriteTestFile(v2 + "/etc/hostname", "golden-v2\n");
  WriteTestFile(v2 + "/etc/motd", "welcome to v2\n");
  REQUIRE(::chmod((v2 + "/usr/bin/dpkg").c_str(), 0700) == 0);
  REQUIRE(::unlink((v2 + "/etc/issue.net").c_str()) == 0);
  SetMtime(v2 + "/etc", 1800000000, 0);
  SetMtime(v2 + "/etc/hostname", 1800000000, 0);
  SetMtime(v2 + "/etc/motd", 1800000000, 0);
  RunJson(server, {"image", "capture", "debian", "--from-dir", v2, "--no-stat-cache"});
  Json diff = RunJson(server, {"image", "diff", "debian@1", "debian@2"});
  CHECK(DiffPaths(diff) == std::vector<std::string>{"changed /etc", "changed /etc/hostname",
                                                    "removed /etc/issue.net", "changed /etc/motd",
                                                    "changed /usr/bin/dpkg"});

  RunJson(server, {"image", "deploy", "debian@1", "--to", t.Sub("copy")});
  Json dd = RunJson(server, {"image", "deploy", "debian@2", "--to", t.Sub("copy"), "--from", "1"});
  CHECK(dd["stream_bytes"].get<uint64_t>() < 100000);
  CHECK(RsyncDiff(v2, t.Sub("copy")) == "");

  RunJson(server, {"image", "rollback", "debian"});
  RunJson(server, {"image", "deploy", "debian", "--to", t.Sub("copy")});
  CHECK(RsyncDiff(minbase, t.Sub("copy")) == "");
}
