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

// ---- The fast paths of the write requests (coord_json.h, Scan* and
// UpdateAnswer) against the general parser and nlohmann's rendering.

namespace {

// An operation as comparable text.
std::string Describe(const Op& op) {
  return std::visit(
      [](const auto& o) {
        using T = std::decay_t<decltype(o)>;
        Json j = {{"path", o.path}};
        if constexpr (std::is_same_v<T, CreateOp>) {
          j["data"] = Base64Encode(o.data);
          j["ephemeral"] = o.ephemeral;
          j["sequential"] = o.sequential;
          j["session"] = o.session;
          j["kind"] = "create";
        } else if constexpr (std::is_same_v<T, SetOp>) {
          j["data"] = Base64Encode(o.data);
          j["version"] = o.version;
          j["kind"] = "set";
        } else {
          j["version"] = o.version;
          j["kind"] = std::is_same_v<T, DeleteOp> ? "delete" : "check";
        }
        return j.dump(-1, ' ', true, Json::error_handler_t::replace);
      },
      op);
}

// The general path of a PUT or POST body: nlohmann, then ParseOp with the
// handler's "op" and "path".
Result<Op> GeneralBody(std::string_view body, const char* kind) {
  KILN_ASSIGN_OR_RETURN(Json j, ParseJson(body, "request body"));
  if (!j.is_object()) return InvalidArgument("request body: expected a JSON object");
  j["op"] = kind;
  j["path"] = "";
  return coordjson::ParseOp(j);
}

Result<std::vector<Op>> GeneralOps(std::string_view body, size_t max_ops) {
  KILN_ASSIGN_OR_RETURN(Json j, ParseJson(body, "request body"));
  return coordjson::ParseOps(j, max_ops);
}

std::string DescribeAll(const std::vector<Op>& ops) {
  std::string s;
  for (const auto& op : ops) s += Describe(op) + "\n";
  return s;
}

void Mutate(std::mt19937& rng, std::string& text) {
  const std::string alphabet =
      "{}[]\":,-0123456789aeflnrstu/\\ \x01\xff\xc3\xa9"
      "datbseophvrinqc_";
  for (int e = 0, n = static_cast<int>(rng() % 4); e < n && !text.empty(); ++e) {
    size_t at = rng() % text.size();
    switch (rng() % 3) {
      case 0: text[at] = alphabet[rng() % alphabet.size()]; break;
      case 1: text.erase(at, 1 + rng() % 3); break;
      default: text.insert(at, 1, alphabet[rng() % alphabet.size()]); break;
    }
  }
}

}  // namespace

TEST_CASE("fast body scanners read the common shapes as the general parser does") {
  auto set = coordjson::ScanSetBody(R"({"data":"v1","version":3})");
  REQUIRE(set.has_value());
  CHECK(set->data == "v1");
  CHECK(set->version == 3);
  CHECK(set->path.empty());
  set = coordjson::ScanSetBody(R"( { "data_base64" : "AP8B" } )");
  REQUIRE(set.has_value());
  CHECK(set->data == std::string("\x00\xff\x01", 3));
  CHECK(set->version == kAnyVersion);
  auto create = coordjson::ScanCreateBody(R"({"ephemeral":true,"session":7,"sequential":false})");
  REQUIRE(create.has_value());
  CHECK(create->ephemeral);
  CHECK(create->session == 7);
  auto ops = coordjson::ScanOps(
      R"({"ops":[{"op":"set","path":"/a","data":"x"},{"op":"delete","path":"/b","version":-1},
                 {"op":"check","path":"/c","version":2},{"op":"create","path":"/d-","sequential":true}]})",
      10);
  REQUIRE(ops.has_value());
  REQUIRE(ops->size() == 4);
  CHECK(Describe((*ops)[1]) == Describe(DeleteOp{"/b", -1}));
  CHECK(Describe((*ops)[2]) == Describe(CheckOp{"/c", 2}));
  CHECK(std::get<CreateOp>((*ops)[3]).sequential);
  CHECK(coordjson::ScanOps(R"({"ops":[]})", 10)->empty());

  // Bad input is never the fast path's business: each of these is left to
  // the general parser, which refuses it with the API's message.
  const std::vector<std::string> bad_set = {
      "",                                                // empty
      R"({"data":"abc)",                                 // truncated
      R"({"data":"abc")",                                // truncated
      R"({"data":7})",                                   // wrong type
      R"({"data":null})",                                // wrong type
      R"({"data":"x","version":"1"})",                   // wrong type
      R"({"data":"x","version":1.5})",                   // float
      R"({"data":"x","version":99999999999})",           // past int32
      R"({"data":"x","version":-2})",                    // below -1
      R"({"data":"x","version":99999999999999999999})",  // past int64
      "{\"data\":\"\xff\"}",                             // invalid UTF-8
      "{\"data\":\"\xed\xa0\x80\"}",                     // an encoded surrogate
      R"({"data":"\q"})",                                // bad escape
      R"({"data":"\ud800"})",                            // lone surrogate
      "{\"data\":\"a\x01\"}",                            // raw control character
      R"({"data":"a","data_base64":"YQ=="})",            // both
      R"({"data_base64":"!!"})",                         // bad base64
      R"({"dat":"x"})",                                  // unknown field
      R"({"data":"x","ephemeral":true})",                // a create field
      R"({"data":"x"} x)",                               // trailing garbage
      R"([1,2])",                                        // not an object
  };
  for (const auto& body : bad_set) {
    INFO(body);
    CHECK(!coordjson::ScanSetBody(body));
    auto general = GeneralBody(body, "set");
    CHECK(!general.ok());
    CHECK(general.status().code() == Code::kInvalidArgument);
    CHECK(!general.status().message().empty());
  }
  // Shapes the fast path leaves alone although they are valid: the general
  // parser decides (duplicates: nlohmann keeps the last).
  for (const auto& body : {R"({"data":"x","data":"y"})", R"({"op":"create","data":"x"})",
                           R"({"path":"/elsewhere","data":"x"})"}) {
    INFO(body);
    CHECK(!coordjson::ScanSetBody(body));
    CHECK(GeneralBody(body, "set").ok());
  }
  CHECK(!coordjson::ScanOps(R"({"ops":[{"op":"frob","path":"/x"}]})", 10));
  CHECK(!coordjson::ScanOps(R"({"ops":[{"op":"set","data":"x"}]})", 10));  // no path
  CHECK(!coordjson::ScanOps(R"({"ops":[{"op":"check","path":"/x"}],"more":1})", 10));
  CHECK(
      !coordjson::ScanOps(R"({"ops":[{"op":"check","path":"/x"},{"op":"check","path":"/y"}]})", 1));
  CHECK(!coordjson::ScanOps(R"({"ops":[{"op":"check","path":"/x"})", 10));  // truncated
}

TEST_CASE("fuzz: fast body scanners accept nothing the general parser refuses, and agree") {
  std::mt19937 rng(17);
  const std::vector<std::string> set_seeds = {
      R"({"data":"hello","version":0})", R"({"data_base64":"AAEC","version":-1})",
      R"({"data":"caf\u00e9 \"q\" \\ \ud83d\ude00"})", "{\"data\":\"caf\xc3\xa9\"}"};
  const std::vector<std::string> create_seeds = {
      R"({"data":"c","ephemeral":false,"sequential":true})", R"({"ephemeral":true,"session":42})",
      R"({"data_base64":"AP8B"})"};
  const std::vector<std::string> ops_seeds = {
      R"({"ops":[{"op":"create","path":"/f/a","data":"1","sequential":true},{"op":"set","path":"/f","data":"y","version":0}]})",
      R"({"ops":[{"op":"delete","path":"/f/a","version":-1},{"op":"check","path":"/f","version":1}]})",
      R"({"ops":[{"op":"create","path":"/f/b","data_base64":"AAEC","session":3,"ephemeral":true}]})"};
  int fast = 0;
  for (int i = 0; i < 6000; ++i) {
    std::string set = set_seeds[rng() % set_seeds.size()];
    std::string create = create_seeds[rng() % create_seeds.size()];
    std::string ops = ops_seeds[rng() % ops_seeds.size()];
    if (i % 4) {
      Mutate(rng, set);
      Mutate(rng, create);
      Mutate(rng, ops);
    }
    if (auto s = coordjson::ScanSetBody(set)) {
      ++fast;
      INFO(set);
      auto general = GeneralBody(set, "set");
      REQUIRE(general.ok());
      REQUIRE(Describe(*s) == Describe(*general));
    }
    if (auto c = coordjson::ScanCreateBody(create)) {
      ++fast;
      INFO(create);
      auto general = GeneralBody(create, "create");
      REQUIRE(general.ok());
      REQUIRE(Describe(*c) == Describe(*general));
    }
    if (auto o = coordjson::ScanOps(ops, 3)) {
      ++fast;
      INFO(ops);
      auto general = GeneralOps(ops, 3);
      REQUIRE(general.ok());
      REQUIRE(DescribeAll(*o) == DescribeAll(*general));
    }
  }
  CHECK(fast > 3000);
}

TEST_CASE("UpdateAnswer renders what the nlohmann answer did") {
  std::mt19937_64 rng(23);
  const std::vector<std::string> paths = {
      "/", "/a/b", "/q/item-0000000007", "/caf\xc3\xa9", "/bad\xff", "/ctl\x01\"\\"};
  for (int i = 0; i < 2000; ++i) {
    Stat s;
    auto any = [&] { return static_cast<int64_t>(rng()) >> (rng() % 64); };
    s.czxid = any();
    s.mzxid = any();
    s.pzxid = any();
    s.ctime_ms = any();
    s.mtime_ms = any();
    s.version = static_cast<int32_t>(any());
    s.cversion = static_cast<int32_t>(any());
    s.ephemeral_owner = any();
    s.data_length = static_cast<int32_t>(any());
    s.num_children = static_cast<int32_t>(any());
    Zxid zxid = any();
    const std::string& path = paths[rng() % paths.size()];
    Json j = {{"path", path}, {"stat", coordjson::StatJson(s)}, {"zxid", zxid}};
    REQUIRE(coordjson::UpdateAnswer(path, s, zxid) ==
            j.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n");
  }
}
