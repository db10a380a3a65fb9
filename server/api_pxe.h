#pragma once
// GET /api/v1/pxe/export[?url=URL]   admin
//   The per-machine boot files for every node, rendered as kiln's TFTP
//   server would ({"files": {path: text}, "kernel", "initrd",
//   "server_url"}); `kiln pxe export` writes them with the boot loaders
//   and the install environment into a directory for tftpd-hpa. URL is
//   where machines reach kiln's HTTP API (default: --advertise-url, else
//   the URL the caller used).

namespace kiln {
class Server;
namespace http {
class Router;
}

void RegisterPxeRoutes(http::Router& router, Server& server);

}  // namespace kiln
