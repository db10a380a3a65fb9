// Znode path rules and the API's JSON mapping of coordination values.

#include <catch2/catch.hpp>
#include <random>

#include "server/coord/coord_store.h"
#include "server/coord/path.h"
#include "server/coord_json.h"

using namespace kiln;
using namespace kiln::coord;

TEST_CASE("paths follow ZooKeeper's rules, and errors say what is wrong where") {
  for (const char* ok :
       {"/", "/a", "/a/b", "/kiln/nodes/web01", "/a-b_c.d", "/\xc3\xa9t\xc3\xa9", "/..a", "/a."})
    CHECK(ValidatePath(ok).ok());
  auto msg = [](std::string_view p, bool seq = false) { return ValidatePath(p, seq).message(); };
  CHECK(msg("") == "malformed path \"\": empty (paths start with '/')");
  CHECK(msg("a") == "malformed path \"a\": must start with '/'");
  CHECK(msg("/a/") == "malformed path \"/a/\": must not end with '/'");
  CHECK(msg("/a//b") == "malformed path \"/a//b\": empty component at byte 3");
  CHECK(msg("/a/./b") == "malformed path \"/a/./b\": relative component \".\" at byte 3");
  CHECK(msg("/a/..") == "malformed path \"/a/..\": relative component \"..\" at byte 3");
  CHECK(msg(std::string("/a\0b", 4)) == "malformed path \"/a\\x00b\": NUL byte at byte 2");
  CHECK(msg("/a\tb") == "malformed path \"/a\\x09b\": control character at byte 2");
  CHECK(msg("/a\xff") == "malformed path \"/a\\xff\": invalid UTF-8 at byte 2");
  CHECK(msg("/\xc2\x85") ==
        "malformed path \"/\\xc2\\x85\": invalid UTF-8 at byte 1");        // C1 control
  CHECK(msg("/\xed\xa0\x80").find("invalid UTF-8") != std::string::npos);  // surrogate
  CHECK(msg("/" + std::string(kMaxPathLength, 'x')).find("longer than 4096 bytes") !=
        std::string::npos);
  // Sequential creates may end in '/', but need a parent.
  CHECK(ValidatePath("/q/", true).ok());
  CHECK(ValidatePath("/q/item-", true).ok());
  CHECK(!ValidatePath("/", true).ok());
  CHECK(!ValidatePath("/q//", true).ok());
}

TEST_CASE("path helpers") {
  CHECK(ParentPath("/a/b") == "/a");
  CHECK(ParentPath("/a") == "/");
  CHECK(ParentPath("/") == "");
  CHECK(BaseName("/a/b") == "b");
  CHECK(JoinPath("/", "x") == "/x");
  CHECK(JoinPath("/a", "x") == "/a/x");
  CHECK(IsUnder("/a/b", "/a"));
  CHECK(IsUnder("/a", "/a"));
  CHECK(!IsUnder("/ab", "/a"));
  CHECK(IsUnder("/anything", "/"));
  CHECK(SequenceSuffix(7) == "0000000007");
  CHECK(SequenceSuffix(2147483647) == "2147483647");
}

TEST_CASE("coordination URLs") {
  auto e = ParseCoordUrl("embedded:/var/lib/kiln/coord");
  REQUIRE(e.ok());
  CHECK(e->dir == "/var/lib/kiln/coord");
  auto z = ParseCoordUrl("zk://10.0.0.1:2181,10.0.0.2:2181/kiln");
  REQUIRE(z.ok());
  CHECK(z->hosts == "10.0.0.1:2181,10.0.0.2:2181");
  CHECK(z->chroot == "/kiln");
  CHECK(ParseCoordUrl("zk://h:2181")->chroot.empty());
  for (const char* bad : {"", "embedded:", "zk://", "zk://host/x", "zk://h:0/x", "zk://h:99999",
                          "zk://h:1/a//b", "etcd://x"}) {
    INFO(bad);
    auto r = ParseCoordUrl(bad);
    CHECK(r.status().code() == Code::kInvalidArgument);
    CHECK(r.status().message().find("coordination URL") == 0);
  }
}

TEST_CASE("base64 and data fields") {
  for (std::string s : {std::string(""), std::string("a"), std::string("ab"), std::string("abc"),
                        std::string("\0\xff\x10", 3)}) {
    auto back = coordjson::Base64Decode(coordjson::Base64Encode(s));
    REQUIRE(back.ok());
    CHECK(*back == s);
  }
  CHECK(coordjson::Base64Encode("hello") == "aGVsbG8=");
  for (const char* bad : {"a", "ab=c", "====", "a b ", "ab$="})
    CHECK(!coordjson::Base64Decode(bad).ok());
  Json j;
  coordjson::PutData(j, "text");
  CHECK(j["data"] == "text");
  Json b;
  coordjson::PutData(b, std::string("\xff", 1));
  CHECK(b["data_base64"] == "/w==");
  CHECK(*coordjson::GetData(b) == "\xff");
  CHECK(!coordjson::GetData(Json{{"data", "x"}, {"data_base64", "eA=="}}).ok());
  CHECK(coordjson::IsUtf8("caf\xc3\xa9"));
  CHECK(!coordjson::IsUtf8("\xc0\x80"));  // overlong
}

TEST_CASE("operations parse strictly") {
  auto op = coordjson::ParseOp(
      Json::parse(R"({"op":"create","path":"/a","data":"x","sequential":true})"));
  REQUIRE(op.ok());
  CHECK(std::get<CreateOp>(*op).sequential);
  CHECK(coordjson::ParseOp(Json::parse(R"({"op":"set","path":"/a","version":3})")).ok());
  auto msg = [](const char* text) {
    return coordjson::ParseOp(Json::parse(text)).status().message();
  };
  CHECK(msg(R"({"op":"set","path":"/a","version":-2})") ==
        "version must be an integer >= -1, got -2");
  CHECK(msg(R"({"op":"delete","path":"/a","data":"x"})") ==
        "unknown field \"data\" in a delete operation");
  CHECK(msg(R"({"path":"/a"})") == "missing field \"op\"");
  CHECK(msg(R"({"op":"create","path":"/a","ephemeral":"yes"})").find("\"ephemeral\"") !=
        std::string::npos);
  CHECK(msg(R"({"op":"create","path":"/a","session":"7"})").find("session") != std::string::npos);
  auto ops = coordjson::ParseOps(
      Json::parse(R"({"ops":[{"op":"check","path":"/a"},{"op":"x","path":"/"}]})"), 10);
  CHECK(ops.status().message().find("op 1: unknown op \"x\"") == 0);
  CHECK(coordjson::ParseOps(Json::parse(R"({"ops":[1,2,3]})"), 2)
            .status()
            .message()
            .find("at most 2") != std::string::npos);
}

TEST_CASE("fuzz: operation parsing never throws") {
  std::mt19937 rng(3);
  const std::vector<Json> values = {
      nullptr, true, 1, -1, -2, 1.5, "s", "/a", Json::array(), Json::object(), 99999999999LL};
  const std::vector<std::string> keys = {
      "op", "path", "data", "data_base64", "version", "ephemeral", "sequential", "session", "x"};
  const std::vector<std::string> kinds = {"create", "set", "delete", "check", "bogus"};
  for (int i = 0; i < 5000; ++i) {
    Json j = Json::object();
    if (rng() % 8) j["op"] = kinds[rng() % kinds.size()];
    for (int k = 0, n = static_cast<int>(rng() % 5); k < n; ++k)
      j[keys[rng() % keys.size()]] = values[rng() % values.size()];
    (void)coordjson::ParseOp(j);
    (void)coordjson::ParseOps(Json{{"ops", Json::array({j, j})}}, 10);
  }
}
