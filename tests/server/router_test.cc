#include "server/http/router.h"

#include <catch2/catch.hpp>

#include "server/auth.h"

using namespace kiln;
using namespace kiln::http;

namespace {

HttpRequest Req(std::string method, std::string path, std::string token = "") {
  HttpRequest r;
  r.method = std::move(method);
  r.path = std::move(path);
  if (!token.empty()) r.headers.emplace_back("authorization", "Bearer " + token);
  return r;
}

HttpResponse RunRoute(const Router& router, HttpRequest req) {
  int status = 0;
  const auto* route = router.Find(req, &status);
  if (!route) return HttpResponse::Text("", status);
  HttpResponse out;
  router.Dispatch(*route, req, Responder([&](HttpResponse r) { out = std::move(r); }));
  return out;
}

}  // namespace

TEST_CASE("patterns bind segments and the rest of the path") {
  TokenAuthenticator auth("admintoken-admintoken-admintoken");
  Router router(&auth);
  router.AddSync("GET", "/api/v1/nodes/{id}/plan",
                 [](HttpRequest& r) { return HttpResponse::Text(r.Param("id")); },
                 {.access = Access::kPublic});
  router.AddSync("GET", "/api/v1/coord/data/{path...}",
                 [](HttpRequest& r) { return HttpResponse::Text(r.Param("path")); },
                 {.access = Access::kPublic});

  CHECK(RunRoute(router, Req("GET", "/api/v1/nodes/web01/plan")).body == "web01");
  CHECK(RunRoute(router, Req("GET", "/api/v1/coord/data/kiln/nodes/a")).body == "/kiln/nodes/a");
  CHECK(RunRoute(router, Req("GET", "/api/v1/coord/data")).body == "/");
  CHECK(RunRoute(router, Req("GET", "/api/v1/nodes/web01")).status == 404);
  CHECK(RunRoute(router, Req("POST", "/api/v1/nodes/web01/plan")).status == 405);
  CHECK(RunRoute(router, Req("HEAD", "/api/v1/nodes/web01/plan")).status == 200);
}

TEST_CASE("access policy: 401 without or with a bad token, 403 for a node on admin routes") {
  TokenAuthenticator auth("admintoken-admintoken-admintoken");
  auth.SetNodeToken("web01", "nodetoken-web01-nodetoken-web01");
  Router router(&auth);
  router.AddSync("POST", "/admin", [](HttpRequest&) { return HttpResponse::Text("done"); });
  router.AddSync(
      "GET", "/node/{id}",
      [](HttpRequest& r) {
        if (!r.principal.MayActAs(r.Param("id")))
          return HttpResponse::Error(PermissionDenied("not your node"));
        return HttpResponse::Text("yours");
      },
      {.access = Access::kAuthenticated});

  auto none = RunRoute(router, Req("POST", "/admin"));
  CHECK(none.status == 401);
  CHECK(none.body.find("\"unauthenticated\"") != std::string::npos);
  CHECK(RunRoute(router, Req("POST", "/admin", "wrong")).status == 401);
  CHECK(RunRoute(router, Req("POST", "/admin", "nodetoken-web01-nodetoken-web01")).status == 403);
  CHECK(RunRoute(router, Req("POST", "/admin", "admintoken-admintoken-admintoken")).status == 200);

  CHECK(RunRoute(router, Req("GET", "/node/web01", "nodetoken-web01-nodetoken-web01")).body ==
        "yours");
  CHECK(RunRoute(router, Req("GET", "/node/web02", "nodetoken-web01-nodetoken-web01")).status ==
        403);

  auth.SetNodeToken("web01", "second-token-second-token-secon");
  CHECK(RunRoute(router, Req("GET", "/node/web01", "nodetoken-web01-nodetoken-web01")).status ==
        401);
  auth.RemoveNode("web01");
  CHECK(RunRoute(router, Req("GET", "/node/web01", "second-token-second-token-secon")).status ==
        401);
}

TEST_CASE("a throwing handler becomes a 500 with its message") {
  Router router(nullptr);
  router.AddSync(
      "GET", "/boom", [](HttpRequest&) -> HttpResponse { throw std::runtime_error("kaput"); },
      {.access = Access::kPublic});
  auto r = RunRoute(router, Req("GET", "/boom"));
  CHECK(r.status == 500);
  CHECK(r.body.find("kaput") != std::string::npos);
}

TEST_CASE("SecretEquals compares whole secrets") {
  CHECK(SecretEquals("abc", "abc"));
  CHECK_FALSE(SecretEquals("abc", "abd"));
  CHECK_FALSE(SecretEquals("abc", "ab"));
}
