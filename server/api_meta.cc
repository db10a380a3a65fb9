#include "server/api_meta.h"

#include "common/log.h"
#include "common/version.h"
#include "server/http/router.h"
#include "server/server.h"

namespace kiln {

void RegisterMetaRoutes(http::Router& router, Server& server) {
  using http::Access;
  using http::HttpRequest;
  using http::HttpResponse;

  // The health answer is a constant buffer: load balancers and boot storms
  // poll it, so it must cost next to nothing.
  router.AddSync(
      "GET", "/healthz", [](HttpRequest&) { return HttpResponse::Text("ok\n"); },
      {.access = Access::kPublic});

  router.AddSync(
      "GET", "/metrics",
      [&server](HttpRequest&) {
        return HttpResponse::Text(server.metrics().Render(), 200,
                                  "text/plain; version=0.0.4; charset=utf-8");
      },
      {.access = Access::kPublic});

  router.AddSync(
      "GET", "/api/v1/version",
      [](HttpRequest&) {
        return HttpResponse::JsonBody({{"version", kVersion}, {"api", kApiVersion}});
      },
      {.access = Access::kPublic});

  router.AddSync(
      "GET", "/api/v1/status",
      [&server](HttpRequest&) { return HttpResponse::JsonBody(server.StatusJson()); },
      {.access = Access::kAuthenticated});

  // Turn debug logging on and off without a restart.
  router.AddSync("POST", "/api/v1/log-level", [](HttpRequest& req) {
    auto body = req.JsonBody();
    if (!body.ok()) return HttpResponse::Error(body.status());
    auto level = JsonField<std::string>(*body, "level");
    if (!level.ok()) return HttpResponse::Error(level.status());
    log::Level l;
    if (!log::ParseLevel(*level, &l))
      return HttpResponse::Error(InvalidArgument("level \"" + *level +
                                                 "\" is not one of debug, info, warn, error"));
    log::SetLevel(l);
    log::Info("serve", "log level changed", {{"level", *level}});
    return HttpResponse::JsonBody({{"level", *level}});
  });
}

}  // namespace kiln
