// The coordination HTTP API against a real `kiln serve`: what it answers to
// good requests, and to every kind of bad one (ZooKeeper's errors as 4xx
// with a message naming what was wrong), plus a fuzz of request bodies.

#include <catch2/catch.hpp>
#include <random>

#include "common/http_client.h"
#include "common/json.h"
#include "common/strings.h"
#include "tests/support/kiln_server.h"
#include "tests/support/process.h"

using namespace kiln;
using namespace kiln::test;
using namespace std::chrono_literals;

namespace {

struct Api {
  explicit Api(const KilnServer& s) : http(s.url(), s.token()) {}
  HttpReply Call(const std::string& method, const std::string& path, const std::string& body = {}) {
    HttpRequestOptions opts;
    if (!body.empty()) opts.content_type = "application/json";
    auto r = http.Do(method, path, body, opts);
    REQUIRE(r.ok());
    return *r;
  }
  // Status and error code of a failed call ("" for success).
  std::pair<long, std::string> Error(const std::string& method, const std::string& path,
                                     const std::string& body = {}) {
    auto r = Call(method, path, body);
    auto j = ParseJson(r.body);
    std::string code =
        j.ok() && j->contains("error") ? (*j)["error"]["code"].get<std::string>() : "";
    last_message =
        j.ok() && j->contains("error") ? (*j)["error"]["message"].get<std::string>() : r.body;
    return {r.status, code};
  }
  HttpClient http;
  std::string last_message;
};

const std::string kData = "/api/v1/coord/data";

}  // namespace

TEST_CASE("coordination API: create, read, set, delete, children, multi, batch") {
  KilnServer server;
  Api api(server);
  auto c = api.Call("POST", kData + "/app", R"({"data":"hello"})");
  CHECK(c.status == 201);
  auto cj = *ParseJson(c.body);
  CHECK(cj["path"] == "/app");
  CHECK(cj["stat"]["version"] == 0);

  auto g = *ParseJson(api.Call("GET", kData + "/app").body);
  CHECK(g["data"] == "hello");
  CHECK(g["zxid"].get<int64_t>() >= cj["zxid"].get<int64_t>());

  auto b64 = *ParseJson(api.Call("GET", kData + "/app?encoding=base64").body);
  CHECK(b64["data_base64"] == "aGVsbG8=");
  // Binary data in and out.
  CHECK(api.Call("POST", kData + "/bin", R"({"data_base64":"AP8B"})").status == 201);
  auto bin = *ParseJson(api.Call("GET", kData + "/bin").body);
  CHECK(bin["data_base64"] == "AP8B");

  auto s = api.Call("PUT", kData + "/app", R"({"data":"v1","version":0})");
  CHECK(s.status == 200);
  CHECK((*ParseJson(s.body))["stat"]["version"] == 1);

  auto m = api.Call("POST", "/api/v1/coord/multi",
                    R"({"ops":[{"op":"create","path":"/app/a","data":"1"},
                               {"op":"create","path":"/app/q-","sequential":true},
                               {"op":"check","path":"/app","version":1},
                               {"op":"set","path":"/app","data":"v2","version":1}]})");
  CHECK(m.status == 200);
  auto mj = *ParseJson(m.body);
  CHECK(mj["results"][1]["path"] == "/app/q-0000000001");
  CHECK(mj["results"][3]["stat"]["mzxid"] == mj["zxid"]);

  auto kids = *ParseJson(api.Call("GET", "/api/v1/coord/children/app").body);
  CHECK(kids["children"] == Json::array({"a", "q-0000000001"}));
  auto root = *ParseJson(api.Call("GET", "/api/v1/coord/children").body);
  CHECK(root["path"] == "/");

  auto batch = api.Call("POST", "/api/v1/coord/batch",
                        R"({"ops":[{"op":"create","path":"/app/b"},{"op":"create","path":"/app/a"},
                                   {"op":"delete","path":"/app/b"},{"op":"check","path":"/app","version":9}]})");
  CHECK(batch.status == 200);
  auto bj = *ParseJson(batch.body);
  CHECK(bj["results"][0]["path"] == "/app/b");
  CHECK(bj["results"][1]["error"]["code"] == "already_exists");
  CHECK(bj["results"][2]["deleted"] == true);
  CHECK(bj["results"][3]["error"]["code"] == "bad_version");
  CHECK(bj["results"][3]["error"]["message"].get<std::string>().find("op 0") == std::string::npos);

  auto d = api.Call("DELETE", kData + "/app/a?version=0");
  CHECK(d.status == 200);

  auto sess = *ParseJson(api.Call("POST", "/api/v1/coord/sessions", R"({"timeout_ms":5000})").body);
  int64_t id = sess["session"];
  CHECK(sess["timeout_ms"] == 5000);
  CHECK(api.Call("POST", kData + "/app/eph", Json{{"ephemeral", true}, {"session", id}}.dump())
            .status == 201);
  CHECK(api.Call("POST", "/api/v1/coord/sessions/" + std::to_string(id) + "/heartbeat").status ==
        200);
  CHECK(api.Call("DELETE", "/api/v1/coord/sessions/" + std::to_string(id)).status == 200);
  CHECK(api.Call("GET", kData + "/app/eph").status == 404);
}

TEST_CASE("coordination API: bad input gets ZooKeeper's errors as 4xx with clear messages") {
  KilnServer server;
  Api api(server);
  REQUIRE(api.Call("POST", kData + "/p", R"({"data":"x"})").status == 201);

  // Versions.
  CHECK(api.Error("PUT", kData + "/p", R"({"data":"y","version":5})") ==
        std::pair<long, std::string>{409, "bad_version"});
  CHECK(api.last_message == "/p: expected version 5, the znode is at version 0");
  CHECK(api.Error("PUT", kData + "/p", R"({"data":"y","version":"one"})").first == 400);
  CHECK(api.last_message.find("version must be an integer") != std::string::npos);
  CHECK(api.Error("PUT", kData + "/p", R"({"data":"y","version":-2})").first == 400);
  CHECK(api.Error("PUT", kData + "/p", R"({"data":"y","version":1.5})").first == 400);
  CHECK(api.Error("PUT", kData + "/p", R"({"data":"y","version":99999999999})").first == 400);
  CHECK(api.Error("DELETE", kData + "/p?version=abc") ==
        std::pair<long, std::string>{400, "invalid_argument"});
  CHECK(api.Error("DELETE", kData + "/p?version=3") ==
        std::pair<long, std::string>{409, "bad_version"});

  // Missing parents and nodes.
  CHECK(api.Error("POST", kData + "/no/such/parent") ==
        std::pair<long, std::string>{404, "not_found"});
  CHECK(api.last_message == "/no/such/parent: parent /no/such does not exist");
  CHECK(api.Error("GET", kData + "/nope") == std::pair<long, std::string>{404, "not_found"});
  CHECK(api.Error("PUT", kData + "/nope", R"({"data":""})").first == 404);
  CHECK(api.Error("GET", "/api/v1/coord/children/nope").first == 404);
  CHECK(api.Error("POST", kData + "/p") == std::pair<long, std::string>{409, "already_exists"});

  // Children of ephemerals; delete with children.
  auto sess = *ParseJson(api.Call("POST", "/api/v1/coord/sessions", "{}").body);
  int64_t id = sess["session"];
  REQUIRE(
      api.Call("POST", kData + "/p/e", Json{{"ephemeral", true}, {"session", id}}.dump()).status ==
      201);
  CHECK(api.Error("POST", kData + "/p/e/child") ==
        std::pair<long, std::string>{400, "no_children_for_ephemerals"});
  CHECK(api.Error("DELETE", kData + "/p") == std::pair<long, std::string>{409, "not_empty"});

  // Oversize data, and bodies larger than the route takes.
  std::string big = Json{{"data", std::string((1 << 20) + 1, 'x')}}.dump();
  CHECK(api.Error("POST", kData + "/big", big) == std::pair<long, std::string>{413, "too_large"});
  CHECK(api.last_message.find("exceeds the 1048576 byte limit") != std::string::npos);
  CHECK(api.Error("POST", kData + "/huge", std::string(9 << 20, ' ')).first == 413);

  // Malformed paths (the URL cannot carry "//": the router folds it).
  CHECK(api.Error("GET", kData + "/a/%01b") ==
        std::pair<long, std::string>{400, "invalid_argument"});
  CHECK(api.last_message == "malformed path \"/a/\\x01b\": control character at byte 3");
  CHECK(api.Error("GET", kData + "/a/%FF").first == 400);
  CHECK(api.last_message.find("invalid UTF-8") != std::string::npos);
  CHECK(api.Error("POST", "/api/v1/coord/multi", R"({"ops":[{"op":"create","path":"/a//b"}]})")
            .first == 400);
  CHECK(api.last_message.find("empty component") != std::string::npos);
  CHECK(
      api.Error("POST", "/api/v1/coord/multi", R"({"ops":[{"op":"create","path":"rel"}]})").first ==
      400);

  // Sessions.
  CHECK(api.Error("POST", "/api/v1/coord/sessions/424242/heartbeat") ==
        std::pair<long, std::string>{404, "session_expired"});
  CHECK(api.Error("DELETE", "/api/v1/coord/sessions/424242").first == 404);
  CHECK(api.Error("POST", "/api/v1/coord/sessions/abc/heartbeat").first == 400);
  CHECK(api.Error("POST", kData + "/p/e2", R"({"ephemeral":true,"session":424242})") ==
        std::pair<long, std::string>{404, "session_expired"});
  CHECK(api.Error("POST", kData + "/p/e3", R"({"ephemeral":true})").first == 400);
  CHECK(api.Error("POST", "/api/v1/coord/sessions", R"({"timeout_ms":-5})").first == 400);
  CHECK(api.Error("POST", "/api/v1/coord/sessions", R"({"ttl":5})").first == 400);

  // Bad JSON, bad fields, bad ops.
  CHECK(api.Error("PUT", kData + "/p", "{").first == 400);
  CHECK(api.last_message.find("request body: invalid JSON") == 0);
  CHECK(api.Error("PUT", kData + "/p", "[1,2]").first == 400);
  CHECK(api.Error("PUT", kData + "/p", R"({"data":7})").first == 400);
  CHECK(api.Error("PUT", kData + "/p", R"({"dat":"x"})").first == 400);
  CHECK(api.last_message.find("unknown field \"dat\"") != std::string::npos);
  CHECK(api.Error("POST", kData + "/q", R"({"data":"a","data_base64":"YQ=="})").first == 400);
  CHECK(api.Error("POST", kData + "/q", R"({"data_base64":"!!"})").first == 400);
  CHECK(api.Error("POST", "/api/v1/coord/multi", R"({"ops":[{"op":"frob","path":"/x"}]})").first ==
        400);
  CHECK(api.last_message == "op 0: unknown op \"frob\" (expected create, set, delete or check)");
  CHECK(api.Error("POST", "/api/v1/coord/multi", R"({"ops":{}})").first == 400);
  CHECK(api.Error("POST", "/api/v1/coord/multi",
                  R"({"ops":[{"op":"set","path":"/p","data":"z","version":7}]})") ==
        std::pair<long, std::string>{409, "bad_version"});
  CHECK(api.last_message.find("op 0 (set /p): ") == 0);
  // Bodies the fast scanner leaves to the general parser: each is a 400
  // naming the problem, and none changes /p.
  for (const std::string body :
       {R"({"data":"abc)", R"({"data":"x","version":99999999999999999999})", "{\"data\":\"\xff\"}",
        R"({"data":"\q"})", R"({"data":"\ud800"})", "{\"data\":\"a\x01\"}", R"({"data":null})",
        R"({"data":"x"} trailing)", R"({"data":"x","ephemeral":true})"}) {
    INFO(body);
    CHECK(api.Error("PUT", kData + "/p", body) ==
          std::pair<long, std::string>{400, "invalid_argument"});
    CHECK(api.last_message.find("request body") == 0);
  }
  CHECK(api.Error("PUT", kData + "/p", R"({"data":"abc)").first == 400);
  CHECK(api.last_message.find("request body: invalid JSON at byte") == 0);
  CHECK(api.Error("POST", "/api/v1/coord/batch", R"({"ops":[{"op":"set","path":"/p","data":7}]})")
            .first == 400);
  CHECK(api.last_message == "op 0: field \"data\" has the wrong type (number)");
  CHECK(api.Error("POST", kData + "/q2", R"({"ephemeral":1})").first == 400);
  CHECK(api.Error("GET", kData + "/p?encoding=hex").first == 400);
  CHECK(api.Error("GET", kData + "/p?wat=1").first == 400);

  // Watch streams: bad parameters, and resumes the store cannot serve.
  CHECK(api.Error("GET", "/api/v1/watch?path=/p&since=-3").first == 400);
  CHECK(api.Error("GET", "/api/v1/watch?path=/p&since=99999999").first == 400);
  CHECK(api.last_message.find("ahead of the store") != std::string::npos);
  CHECK(api.Error("GET", "/api/v1/watch?path=p").first == 400);
  CHECK(api.Error("GET", "/api/v1/watch?path=/p&recursive=maybe").first == 400);

  // Nothing above changed /p.
  auto p = *ParseJson(api.Call("GET", kData + "/p").body);
  CHECK(p["data"] == "x");
  CHECK(p["stat"]["version"] == 0);
  // Every call needs the admin token.
  HttpClient anon(server.url(), "");
  CHECK(anon.Do("GET", kData + "/p")->status == 401);
  CHECK(anon.Do("GET", "/api/v1/watch?path=/")->status == 401);
}

TEST_CASE("coordination API: a batch answers each op on its own, and refuses bad batches whole") {
  KilnServer server;
  Api api(server);
  REQUIRE(api.Call("POST", kData + "/b", R"({"data":"0"})").status == 201);

  // Mixed success and failure: every op gets its own answer, in order, and
  // the failures change nothing.
  auto r = api.Call("POST", "/api/v1/coord/batch",
                    R"({"ops":[{"op":"set","path":"/b","data":"1","version":0},
                               {"op":"set","path":"/b","data":"x","version":0},
                               {"op":"set","path":"/b","data":"2","version":1},
                               {"op":"create","path":"/b/kid","data":"k"},
                               {"op":"create","path":"/no/parent"},
                               {"op":"delete","path":"/b","version":2},
                               {"op":"check","path":"/b","version":2}]})");
  REQUIRE(r.status == 200);
  auto j = *ParseJson(r.body);
  REQUIRE(j["results"].size() == 7);
  CHECK(j["results"][0]["stat"]["version"] == 1);
  CHECK(j["results"][1]["error"]["code"] == "bad_version");
  CHECK(j["results"][2]["stat"]["version"] == 2);
  CHECK(j["results"][2]["zxid"].get<int64_t>() > j["results"][0]["zxid"].get<int64_t>());
  CHECK(j["results"][3]["path"] == "/b/kid");
  CHECK(j["results"][4]["error"]["code"] == "not_found");
  CHECK(j["results"][5]["error"]["code"] == "not_empty");
  CHECK(j["results"][6]["ok"] == true);
  auto b = *ParseJson(api.Call("GET", kData + "/b").body);
  CHECK(b["data"] == "2");
  CHECK(b["stat"]["version"] == 2);

  // An empty batch is an empty answer.
  CHECK(*ParseJson(api.Call("POST", "/api/v1/coord/batch", R"({"ops":[]})").body) ==
        Json{{"results", Json::array()}});

  // Bad batches are refused whole, before any op runs.
  CHECK(api.Error("POST", "/api/v1/coord/batch", "{\"ops\":[").first == 400);
  CHECK(api.last_message.find("request body: invalid JSON") == 0);
  CHECK(api.Error("POST", "/api/v1/coord/batch", R"({"ops":{"op":"set"}})").first == 400);
  CHECK(api.Error("POST", "/api/v1/coord/batch", R"({"ops":[{"op":"set","path":"/b","data":"3"},
                                                            {"op":"frob","path":"/b"}]})") ==
        std::pair<long, std::string>{400, "invalid_argument"});
  CHECK(api.last_message == "op 1: unknown op \"frob\" (expected create, set, delete or check)");
  CHECK(api.Error("POST", "/api/v1/coord/batch", R"({"ops":[{"op":"set","data":"3"}]})").first ==
        400);
  Json many = {{"ops", Json::array()}};
  for (int i = 0; i < 10001; ++i) many["ops"].push_back({{"op", "check"}, {"path", "/b"}});
  CHECK(api.Error("POST", "/api/v1/coord/batch", many.dump()) ==
        std::pair<long, std::string>{413, "too_large"});
  CHECK(api.last_message == "10001 operations in one request; at most 10000");
  // The limit itself is fine.
  many["ops"].erase(many["ops"].size() - 1);
  auto full = api.Call("POST", "/api/v1/coord/batch", many.dump());
  CHECK(full.status == 200);
  CHECK((*ParseJson(full.body))["results"].size() == 10000);
  // None of the refused batches touched /b.
  CHECK((*ParseJson(api.Call("GET", kData + "/b").body))["data"] == "2");
}

TEST_CASE("coordination API: fuzzed request bodies never crash the server or answer 5xx") {
  KilnServer server;
  Api api(server);
  REQUIRE(api.Call("POST", kData + "/f", R"({"data":"x"})").status == 201);
  const std::vector<std::pair<std::string, std::string>> seeds = {
      {"/api/v1/coord/multi",
       R"({"ops":[{"op":"create","path":"/f/a","data":"1","sequential":true},{"op":"set","path":"/f","data":"y","version":0},{"op":"delete","path":"/f/a","version":-1},{"op":"check","path":"/f","version":1}]})"},
      {"/api/v1/coord/batch",
       R"({"ops":[{"op":"create","path":"/f/b","data_base64":"AAEC"},{"op":"set","path":"/f/b","data":"z"}]})"},
      {kData + "/f/c", R"({"data":"c","ephemeral":false,"sequential":true})"},
      {"/api/v1/coord/sessions", R"({"timeout_ms":1000})"},
  };
  std::mt19937 rng(7);
  const std::string alphabet = "{}[]\":,-0123456789aeflnrstu/\\ \x01\xff";
  int statuses[6] = {};
  for (int i = 0; i < 600; ++i) {
    const auto& [path, seed] = seeds[rng() % seeds.size()];
    std::string body = seed;
    int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits && !body.empty(); ++e) {
      size_t at = rng() % body.size();
      switch (rng() % 3) {
        case 0: body[at] = alphabet[rng() % alphabet.size()]; break;
        case 1: body.erase(at, 1 + rng() % 3); break;
        default: body.insert(at, 1, alphabet[rng() % alphabet.size()]); break;
      }
    }
    auto r = api.Call("POST", path, body);
    INFO(path << " " << body << " -> " << r.status << " " << r.body);
    REQUIRE(r.status < 500);
    REQUIRE(ParseJson(r.body).ok());
    statuses[r.status / 100]++;
  }
  // The mutations reach both the parser's errors and the store's.
  CHECK(statuses[4] > 0);
  CHECK(statuses[2] > 0);
  CHECK(api.Call("GET", "/healthz").status == 200);
}
