#pragma once
// kiln's HTTP server: libmicrohttpd with epoll event loops (one per thread
// of a small pool), never a thread per client.
//
// Every request is dispatched asynchronously: a handler gets a Responder
// and may answer later from any thread (after a group-committed fsync, a
// watch event, another server). Until then the connection is suspended and
// costs no CPU. Streamed bodies (watch streams, images) park their
// connection the same way while they wait for data. Files go out with
// sendfile(2).

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
