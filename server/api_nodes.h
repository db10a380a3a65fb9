#pragma once
// The node inventory over HTTP (docs/API.md, "Nodes"). {id} is a node name
// or one of its MACs.
//
// GET    /api/v1/nodes                 admin  {"nodes": [node...]}
// POST   /api/v1/nodes                 admin  {"name","macs",["classes","image",
//                                             "hostname","boot"]} -> 201 node
// GET    /api/v1/nodes/{id}            token  node (a node token: its own only)
// DELETE /api/v1/nodes/{id}            admin  {"removed": id}
// PUT    /api/v1/nodes/{id}/boot       admin  {"target": "install"} -> node
// POST   /api/v1/nodes/{id}/install    admin  node, next boot install
// POST   /api/v1/nodes/{id}/installed  token  {"image"?}: the agent reports a
//                                             successful install; the node
//                                             boots localboot from now on
// POST   /api/v1/enroll                public {"token"}: trades a one-time
//                                             enrollment token for a node
//                                             token -> {"node", "token"}
//
// Node records never carry the tokens. While the inventory is not running
// every call answers 503.

namespace kiln {
class Server;
namespace http {
class Router;
}

void RegisterNodeRoutes(http::Router& router, Server& server);

}  // namespace kiln
