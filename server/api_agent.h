#pragma once
// What an agent calls while it works (docs/API.md "Agents"). Every call
// takes the node's own token (or the admin token):
//
//   POST   /api/v1/nodes/{id}/events           {"run","events":[...]} -> {"acked":N}
//   GET    /api/v1/nodes/{id}/events?limit=N   the stored history, oldest first
//   GET    /api/v1/nodes/{id}/progress         the latest event
//   POST   /api/v1/nodes/{id}/session          {"timeout_ms","info"} -> {"session","timeout_ms"}
//   POST   /api/v1/nodes/{id}/session/{sid}/heartbeat
//   PUT    /api/v1/nodes/{id}/session/{sid}    {"info"}: what the agent reports now
//   DELETE /api/v1/nodes/{id}/session/{sid}
//   PUT    /api/v1/nodes/{id}/facts            the agent's facts (docs/AGENT.md)
//   PUT    /api/v1/nodes/{id}/log?run=R        the install log (text)
//   GET    /api/v1/nodes/{id}/log              the latest install log

namespace kiln {
class Server;
namespace http {
class Router;
}

void RegisterAgentRoutes(http::Router& router, Server& server);

}  // namespace kiln
