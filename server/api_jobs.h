#pragma once
// Jobs for installed hosts' agents (docs/API.md "Jobs"): the admin queues a
// job on a node, the node's `kiln-agent daemon` takes it, runs it and
// reports back. Each job is a znode /kiln/nodes/<id>/jobs/j-NNNNNNNNNN
// (sequential, so jobs run in the order they were queued):
//
//   {"id","node","kind","args":{...},"state","created_ms","updated_ms",
//    "exit_code","output","message"}
//
// kind: run {"command", "timeout_s"}; update {"image", "version"};
// rollback {}. state: queued -> running -> done | failed. Only the admin
// token queues; only the node's token (or the admin) moves a job along.
//
// GET .../jobs?wait=S and GET .../jobs/<job>?wait=S are long polls
// (store_waits.h): answered when a job is there, or done, or after S.

namespace kiln {
class Server;
namespace http {
class Router;
}

void RegisterJobRoutes(http::Router& router, Server& server);

}  // namespace kiln
