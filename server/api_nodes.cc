#include "server/api_nodes.h"

#include "server/http/router.h"
#include "server/inventory/inventory.h"
#include "server/server.h"

namespace kiln {
namespace {

using http::HttpRequest;
using http::HttpResponse;

Result<inventory::Inventory*> Need(Server& server) {
  inventory::Inventory* inv = server.inventory();
  if (!inv)
    return Unavailable(
        "the node inventory is not available (the coordination store is not running)");
  return inv;
}

HttpResponse NodeJson(const inventory::Node& n, int status = 200) {
  return HttpResponse::JsonBody(n.ToJson(/*with_secrets=*/false), status);
}

// Reads an optional array of strings from the body.
Result<std::vector<std::string>> Strings(const Json& body, const char* key) {
  return JsonFieldOr<std::vector<std::string>>(body, key, {});
}

}  // namespace

void RegisterNodeRoutes(http::Router& router, Server& server) {
  using http::Access;

  router.AddSync("GET", "/api/v1/nodes", [&server](HttpRequest&) {
    auto inv = Need(server);
    if (!inv.ok()) return HttpResponse::Error(inv.status());
    Json nodes = Json::array();
    for (const auto& n : (*inv)->List()) nodes.push_back(n.ToJson(false));
    return HttpResponse::JsonBody({{"nodes", nodes}});
  });

  router.AddSync("POST", "/api/v1/nodes", [&server](HttpRequest& req) {
    auto inv = Need(server);
    if (!inv.ok()) return HttpResponse::Error(inv.status());
    auto body = req.JsonBody();
    if (!body.ok()) return HttpResponse::Error(body.status());
    inventory::NodeSpec spec;
    auto name = JsonField<std::string>(*body, "name");
    auto macs = Strings(*body, "macs");
    auto classes = Strings(*body, "classes");
    auto image = JsonFieldOr<std::string>(*body, "image", "");
    auto hostname = JsonFieldOr<std::string>(*body, "hostname", "");
    auto boot = JsonFieldOr<std::string>(*body, "boot", "");
    for (const Status& s : {name.status(), macs.status(), classes.status(), image.status(),
                            hostname.status(), boot.status()})
      if (!s.ok()) return HttpResponse::Error(s.WithContext("request body"));
    spec.name = *name;
    spec.macs = *macs;
    spec.classes = *classes;
    spec.image = *image;
    spec.hostname = *hostname;
    if (!boot->empty()) {
      auto t = pxe::ParseBootTarget(*boot);
      if (!t.ok()) return HttpResponse::Error(t.status());
      spec.boot = *t;
    }
    auto n = (*inv)->Add(spec);
    if (!n.ok()) return HttpResponse::Error(n.status());
    return NodeJson(*n, 201);
  });

  router.AddSync(
      "GET", "/api/v1/nodes/{id}",
      [&server](HttpRequest& req) {
        auto inv = Need(server);
        if (!inv.ok()) return HttpResponse::Error(inv.status());
        auto n = (*inv)->Get(req.Param("id"));
        if (!n.ok()) {
          // A node token learns nothing about other nodes, not even absence.
          if (!req.principal.is_admin())
            return HttpResponse::Error(PermissionDenied("a node token may only read its own node"));
          return HttpResponse::Error(n.status());
        }
        if (!req.principal.MayActAs(n->id))
          return HttpResponse::Error(PermissionDenied("a node token may only read its own node"));
        return NodeJson(*n);
      },
      {.access = Access::kAuthenticated});

  router.AddSync("DELETE", "/api/v1/nodes/{id}", [&server](HttpRequest& req) {
    auto inv = Need(server);
    if (!inv.ok()) return HttpResponse::Error(inv.status());
    auto n = (*inv)->Get(req.Param("id"));
    if (!n.ok()) return HttpResponse::Error(n.status());
    Status s = (*inv)->Remove(n->id);
    if (!s.ok()) return HttpResponse::Error(s);
    return HttpResponse::JsonBody({{"removed", n->id}});
  });

  router.AddSync("PUT", "/api/v1/nodes/{id}/boot", [&server](HttpRequest& req) {
    auto inv = Need(server);
    if (!inv.ok()) return HttpResponse::Error(inv.status());
    auto body = req.JsonBody();
    if (!body.ok()) return HttpResponse::Error(body.status());
    auto target = JsonField<std::string>(*body, "target");
    if (!target.ok()) return HttpResponse::Error(target.status().WithContext("request body"));
    auto t = pxe::ParseBootTarget(*target);
    if (!t.ok()) return HttpResponse::Error(t.status());
    auto n = (*inv)->SetBoot(req.Param("id"), *t);
    if (!n.ok()) return HttpResponse::Error(n.status());
    return NodeJson(*n);
  });

  router.AddSync("POST", "/api/v1/nodes/{id}/install", [&server](HttpRequest& req) {
    auto inv = Need(server);
    if (!inv.ok()) return HttpResponse::Error(inv.status());
    // With {"wave": ID, "max_parallel": N}: one of an install wave.
    Json body = Json::object();
    if (!req.body.empty()) {
      auto b = req.JsonBody();
      if (!b.ok()) return HttpResponse::Error(b.status());
      body = *b;
    }
    if (!body.is_object())
      return HttpResponse::Error(InvalidArgument("request body: expected an object"));
    Result<inventory::Node> n = InvalidArgument("");
    if (body.contains("wave")) {
      auto wave = JsonField<std::string>(body, "wave");
      auto max = JsonField<int>(body, "max_parallel");
      if (!wave.ok()) return HttpResponse::Error(wave.status().WithContext("request body"));
      if (!max.ok()) return HttpResponse::Error(max.status().WithContext("request body"));
      n = (*inv)->QueueInstall(req.Param("id"), *wave, *max);
    } else {
      n = (*inv)->SetBoot(req.Param("id"), pxe::BootTarget::kInstall);
    }
    if (!n.ok()) return HttpResponse::Error(n.status());
    return NodeJson(*n);
  });

  router.AddSync("POST", "/api/v1/nodes/{id}/installed",
                 [&server](HttpRequest& req) {
                   auto inv = Need(server);
                   if (!inv.ok()) return HttpResponse::Error(inv.status());
                   auto n = (*inv)->Get(req.Param("id"));
                   if (!n.ok() || !req.principal.MayActAs(n->id)) {
                     if (!req.principal.is_admin())
                       return HttpResponse::Error(
                           PermissionDenied("a node token may only report for its own node"));
                     return HttpResponse::Error(n.status());
                   }
                   std::string image;
                   if (!req.body.empty()) {
                     auto body = req.JsonBody();
                     if (!body.ok()) return HttpResponse::Error(body.status());
                     auto im = JsonFieldOr<std::string>(*body, "image", "");
                     if (!im.ok())
                       return HttpResponse::Error(im.status().WithContext("request body"));
                     image = *im;
                   }
                   auto done = (*inv)->MarkInstalled(n->id, image);
                   if (!done.ok()) return HttpResponse::Error(done.status());
                   return NodeJson(*done);
                 },
                 {.access = Access::kAuthenticated});

  router.AddSync(
      "POST", "/api/v1/enroll",
      [&server](HttpRequest& req) {
        auto inv = Need(server);
        if (!inv.ok()) return HttpResponse::Error(inv.status());
        auto body = req.JsonBody();
        if (!body.ok()) return HttpResponse::Error(body.status());
        auto token = JsonField<std::string>(*body, "token");
        if (!token.ok()) return HttpResponse::Error(token.status().WithContext("request body"));
        auto e = (*inv)->Enroll(*token);
        if (!e.ok()) return HttpResponse::Error(e.status());
        return HttpResponse::JsonBody({{"node", e->node.ToJson(false)}, {"token", e->token}});
      },
      {.access = Access::kPublic, .max_body = 64 << 10});
}

}  // namespace kiln
