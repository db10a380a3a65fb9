#pragma once
// kiln's HTTP/1.1 server: a few epoll event loops (one thread each) serve
// every connection, never a thread per client.
//
// Every request is dispatched asynchronously: a handler gets a Responder
// and may answer later from any thread (after a group-committed fsync, a
// watch event, another server). Until then the connection costs nothing
// but its memory. Streamed bodies (watch streams, images) park the same
// way while they wait for data. Files go out with sendfile(2).
//
// Its own rather than libmicrohttpd's (which kiln used until 2026-11-27):
// waking a parked connection there took a lock its event loops share and
// walked every suspended connection, per wake, so a change watched by
// 1,000 streams spent milliseconds in wakes alone, and every request paid
// for a 32 KiB memset (9% of the CPU in a profile; its per-connection
// pool's reset, by the look of it) (docs/BENCHMARKS.md). The parts:
// request_head.h and chunked_body.h read requests, connection.h is one
// client's state machine, mailbox.h is how other threads reach a loop.

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>

#include "common/status.h"
#include "server/http/listen_address.h"
#include "server/http/router.h"

namespace kiln::http {

struct HttpServerOptions {
  std::string listen = "127.0.0.1:7070";
  int threads = 2;  // event loops; each serves many connections
  unsigned connection_limit = 20000;
  unsigned idle_timeout_s = 600;  // parked streams never time out
  // Called after each response is queued: for metrics and access logs.
  std::function<void(const Router::Route* route, const HttpRequest& req, int status,
                     double seconds)>
      on_response;
};

class HttpServer {
 public:
  // Binds and starts serving. A busy port fails here with kUnavailable
  // naming the address.
  static Result<std::unique_ptr<HttpServer>> Start(const HttpServerOptions& opts,
                                                   const Router* router);
  ~HttpServer();  // Stop()

  // Where it listens (the real port when asked for port 0).
  const ListenAddress& address() const { return address_; }

  // Requests whose handler has not answered yet (their connections are
  // suspended), and open streamed bodies. Any thread.
  struct Load {
    size_t pending = 0;
    size_t streams = 0;
  };
  Load load() const;

  // Stops accepting, answers pending requests with 503, ends open streams
  // and joins the event loops. Idempotent.
  void Stop();

  struct Impl;

 private:
  HttpServer() = default;
  std::unique_ptr<Impl> impl_;
  ListenAddress address_;
};

}  // namespace kiln::http
