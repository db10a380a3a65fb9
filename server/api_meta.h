#pragma once
// Routes every kiln server answers regardless of modules: health, version,
// metrics and status.

namespace kiln {
class Server;
namespace http {
class Router;
}

// GET /healthz                public  "ok"
// GET /metrics                public  Prometheus text
// GET /api/v1/version         public  {"version","api"}
// GET /api/v1/status          token   server and component state
// POST /api/v1/log-level      admin   {"level":"debug"}
void RegisterMetaRoutes(http::Router& router, Server& server);

}  // namespace kiln
