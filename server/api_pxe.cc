#include "server/api_pxe.h"

#include "pxe/export.h"
#include "server/http/router.h"
#include "server/inventory/inventory.h"
#include "server/server.h"

namespace kiln {

void RegisterPxeRoutes(http::Router& router, Server& server) {
  router.AddSync("GET", "/api/v1/pxe/export", [&server](http::HttpRequest& req) {
    inventory::Inventory* inv = server.inventory();
    if (!inv)
      return http::HttpResponse::Error(Unavailable(
          "the node inventory is not available (the coordination store is not running)"));
    pxe::BootSettings s = server.boot()->settings();
    std::string url = s.server_url;
    if (url.empty()) url = req.Query("url", server.url());
    while (!url.empty() && url.back() == '/') url.pop_back();
    std::vector<pxe::ExportEntry> entries;
    for (const auto& n : inv->List()) {
      pxe::BootDecision d;
      d.target = n.boot;
      d.node = n.id;
      d.hostname = n.hostname;
      if (n.boot == pxe::BootTarget::kInstall || n.boot == pxe::BootTarget::kDiscover)
        d.token = n.enroll_token;
      for (const auto& m : n.macs) entries.push_back({m, d});
    }
    Json files = Json::object();
    for (auto& [path, text] : pxe::RenderExportFiles(entries, s, url)) files[path] = text;
    return http::HttpResponse::JsonBody(
        {{"files", files}, {"kernel", s.kernel}, {"initrd", s.initrd}, {"server_url", url}});
  });
}

}  // namespace kiln
