#pragma once
// HTTP routes of the coordination service (docs/API.md, "Coordination"):
//   /api/v1/coord/data/{path}      GET read, POST create, PUT set, DELETE delete
//   /api/v1/coord/children/{path}  GET children
//   /api/v1/coord/multi            POST atomic multi
//   /api/v1/coord/batch            POST independent operations, pipelined
//   /api/v1/coord/sessions[...]    sessions and heartbeats
//   /api/v1/watch                  GET a watch stream as Server-Sent Events

namespace kiln {

class Server;
namespace http {
class Router;
}

void RegisterCoordRoutes(http::Router& router, Server& server);
// api_watch.cc
void RegisterWatchRoute(http::Router& router, Server& server);

}  // namespace kiln
