#include "server/http/http_server.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstring>
#include <thread>

#include "common/log.h"
#include "common/strings.h"
#include "server/http/mhd_api.h"

namespace kiln::http {

struct RequestCtx;
struct StreamCtx;

struct HttpServer::Impl {
  const Router* router = nullptr;
  HttpServerOptions opts;
  MHD_Daemon* daemon = nullptr;
  UniqueFd listen_fd;

  // Requests waiting for an async handler, and parked streams: Stop() must
  // wake them all before MHD can shut down.
  std::atomic<bool> stopping{false};
  std::mutex mu;  // guards pending and streams
  std::set<std::shared_ptr<RequestCtx>> pending;
  std::set<StreamCtx*> streams;
};

namespace {
using Clock = std::chrono::steady_clock;
}

// One request's state, shared between MHD's thread and a Responder that
// may complete it from another thread.
struct RequestCtx : std::enable_shared_from_this<RequestCtx> {
  HttpServer::Impl* server = nullptr;
  MHD_Connection* conn = nullptr;
  const Router::Route* route = nullptr;
  int early_status = 0;  // 404/405/413 decided before the body
  HttpRequest req;
  size_t max_body = 0;
  bool dispatched = false;
  Clock::time_point start = Clock::now();

  std::mutex mu;
  bool ready = false;      // response holds the answer
  bool suspended = false;  // waiting in MHD for Complete()
  bool finished = false;   // MHD is done with the connection
  HttpResponse response;

  void Complete(HttpResponse r);
};

// Parking for a streamed body (see BodyStream::Parking).
struct StreamCtx : BodyStream::Parking {
  HttpServer::Impl* server = nullptr;
  MHD_Connection* conn = nullptr;
  std::shared_ptr<BodyStream> stream;
  std::mutex mu;
  bool parked = false;
  bool closed = false;

  void Park() override {
    std::lock_guard lock(mu);
    parked = true;
    Mhd().MHD_suspend_connection(conn);
  }
  void Unpark() override {
    std::lock_guard lock(mu);
    if (parked && !closed) {
      parked = false;
      Mhd().MHD_resume_connection(conn);
    }
  }
};

namespace {

ssize_t StreamReader(void* cls, uint64_t /*pos*/, char* buf, size_t max) {
  auto* sc = static_cast<StreamCtx*>(cls);
  if (sc->server->stopping) return MHD_CONTENT_READER_END_OF_STREAM;
  ssize_t n = sc->stream->Read(buf, max, *sc);
  if (n > 0) return n;
  if (n == BodyStream::kEnd) return MHD_CONTENT_READER_END_OF_STREAM;
  if (n == BodyStream::kError) return MHD_CONTENT_READER_END_WITH_ERROR;
  return 0;  // parked: MHD calls again after Unpark
}

void StreamFree(void* cls) {
  auto* sc = static_cast<StreamCtx*>(cls);
  {
    std::lock_guard lock(sc->server->mu);
    sc->server->streams.erase(sc);
  }
  {
    std::lock_guard lock(sc->mu);
    sc->closed = true;
  }
  sc->stream->Closed();
  delete sc;
}

MHD_Result QueueResponse(RequestCtx& ctx, HttpResponse& r) {
  MHD_Response* resp = nullptr;
  if (r.stream) {
    auto* sc = new StreamCtx;
    sc->server = ctx.server;
    sc->conn = ctx.conn;
    sc->stream = std::move(r.stream);
    {
      std::lock_guard lock(ctx.server->mu);
      ctx.server->streams.insert(sc);
    }
    resp = Mhd().MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 64 * 1024, StreamReader, sc,
                                                   StreamFree);
  } else if (r.file_fd >= 0) {
    resp = Mhd().MHD_create_response_from_fd_at_offset64(r.file_size, r.file_fd,
                                                         static_cast<uint64_t>(r.file_offset));
    r.file_fd = -1;  // MHD owns it now
  } else {
    resp =
        Mhd().MHD_create_response_from_buffer(r.body.size(), r.body.data(), MHD_RESPMEM_MUST_COPY);
  }
  if (!resp) return MHD_NO;
  if (!r.content_type.empty())
    Mhd().MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r.content_type.c_str());
  for (const auto& [k, v] : r.headers) Mhd().MHD_add_response_header(resp, k.c_str(), v.c_str());
  MHD_Result ret = Mhd().MHD_queue_response(ctx.conn, static_cast<unsigned>(r.status), resp);
  Mhd().MHD_destroy_response(resp);

  if (ctx.server->opts.on_response) {
    double secs = std::chrono::duration<double>(Clock::now() - ctx.start).count();
    ctx.server->opts.on_response(ctx.route, ctx.req, r.status, secs);
  }
  return ret;
}

MHD_Result CollectHeader(void* cls, MHD_ValueKind /*kind*/, const char* key, const char* value) {
  auto* req = static_cast<HttpRequest*>(cls);
  req->headers.emplace_back(ToLower(key), value ? value : "");
  return MHD_YES;
}

MHD_Result CollectQuery(void* cls, MHD_ValueKind /*kind*/, const char* key, const char* value) {
  auto* req = static_cast<HttpRequest*>(cls);
  req->query[key] = value ? value : "";
  return MHD_YES;
}

std::string RemoteOf(MHD_Connection* conn) {
  const MHD_ConnectionInfo* info =
      Mhd().MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
  if (!info || !info->client_addr) return "";
  char host[64] = {};
  const sockaddr* sa = info->client_addr;
  if (sa->sa_family == AF_INET) {
    auto* sin = reinterpret_cast<const sockaddr_in*>(sa);
    ::inet_ntop(AF_INET, &sin->sin_addr, host, sizeof host);
    return fmt::format("{}:{}", host, ntohs(sin->sin_port));
  }
  if (sa->sa_family == AF_INET6) {
    auto* sin6 = reinterpret_cast<const sockaddr_in6*>(sa);
    ::inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof host);
    return fmt::format("[{}]:{}", host, ntohs(sin6->sin6_port));
  }
  return "";
}

MHD_Result OnRequest(void* cls, MHD_Connection* conn, const char* url, const char* method,
                     const char* /*version*/, const char* upload_data, size_t* upload_data_size,
                     void** con_cls) {
  auto* server = static_cast<HttpServer::Impl*>(cls);
  auto* holder = static_cast<std::shared_ptr<RequestCtx>*>(*con_cls);

  if (!holder) {
    // Headers are in: find the route now so that oversized or misrouted
    // bodies are refused before they are read.
    auto ctx = std::make_shared<RequestCtx>();
    ctx->server = server;
    ctx->conn = conn;
    ctx->req.method = method;
    ctx->req.path = url;
    ctx->req.remote = RemoteOf(conn);
    Mhd().MHD_get_connection_values(conn, MHD_HEADER_KIND, CollectHeader, &ctx->req);
    Mhd().MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, CollectQuery, &ctx->req);
    ctx->route = server->router->Find(ctx->req, &ctx->early_status);
    if (ctx->route) {
      ctx->max_body = ctx->route->options.max_body;
      auto cl = ParseUint(ctx->req.Header("content-length"));
      if (cl && *cl > ctx->max_body) ctx->early_status = 413;
    }
    *con_cls = new std::shared_ptr<RequestCtx>(std::move(ctx));
    return MHD_YES;
  }

  RequestCtx& ctx = **holder;
  if (*upload_data_size != 0) {
    if (ctx.early_status == 0) {
      if (ctx.req.body.size() + *upload_data_size > ctx.max_body)
        ctx.early_status = 413;
      else
        ctx.req.body.append(upload_data, *upload_data_size);
    }
    *upload_data_size = 0;  // consumed (or discarded)
    return MHD_YES;
  }

  if (!ctx.dispatched) {
    ctx.dispatched = true;
    if (ctx.early_status != 0) {
      Status s = ctx.early_status == 404 ? NotFound("no such API path: " + ctx.req.path)
                 : ctx.early_status == 405
                     ? Status(Code::kInvalidArgument, fmt::format("method {} is not allowed on {}",
                                                                  ctx.req.method, ctx.req.path))
                     : TooLarge(fmt::format("request body larger than {} bytes", ctx.max_body));
      HttpResponse r = HttpResponse::Error(s);
      r.status = ctx.early_status;
      return QueueResponse(ctx, r);
    }
    std::weak_ptr<RequestCtx> weak = *holder;
    server->router->Dispatch(*ctx.route, ctx.req, Responder([weak](HttpResponse r) {
      if (auto c = weak.lock()) c->Complete(std::move(r));
    }));
    std::unique_lock lock(ctx.mu);
    if (!ctx.ready) {
      // The handler answers later: park the connection until it does.
      ctx.suspended = true;
      {
        std::lock_guard slock(server->mu);
        server->pending.insert(*holder);
      }
      Mhd().MHD_suspend_connection(conn);
      return MHD_YES;
    }
  }
  std::unique_lock lock(ctx.mu);
  if (!ctx.ready) return MHD_YES;  // spurious wakeup
  lock.unlock();
  return QueueResponse(ctx, ctx.response);
}

void OnCompleted(void* /*cls*/, MHD_Connection* /*conn*/, void** con_cls,
                 MHD_RequestTerminationCode /*toe*/) {
  auto* holder = static_cast<std::shared_ptr<RequestCtx>*>(*con_cls);
  if (!holder) return;
  {
    std::lock_guard lock((*holder)->mu);
    (*holder)->finished = true;
  }
  delete holder;
  *con_cls = nullptr;
}

void OnMhdLog(void* /*cls*/, const char* fmt_str, va_list ap) {
  char buf[512];
  std::vsnprintf(buf, sizeof buf, fmt_str, ap);
  std::string msg(buf);
  while (!msg.empty() && msg.back() == '\n') msg.pop_back();
  log::Debug("http", msg);
}

}  // namespace

void RequestCtx::Complete(HttpResponse r) {
  std::shared_ptr<RequestCtx> keep = shared_from_this();
  std::lock_guard lock(mu);
  if (ready || finished) return;
  response = std::move(r);
  ready = true;
  if (suspended) {
    suspended = false;
    {
      std::lock_guard slock(server->mu);
      server->pending.erase(keep);
    }
    Mhd().MHD_resume_connection(conn);
  }
}

Result<std::unique_ptr<HttpServer>> HttpServer::Start(const HttpServerOptions& opts,
                                                      const Router* router) {
  KILN_ASSIGN_OR_RETURN(ListenAddress want, ParseListenAddress(opts.listen));
  KILN_RETURN_IF_ERROR(LoadMhd().status());
  KILN_ASSIGN_OR_RETURN(UniqueFd fd, BindSocket(want, SOCK_STREAM));
  KILN_ASSIGN_OR_RETURN(ListenAddress got, LocalAddress(fd.get()));
  got.host = want.host;

  std::unique_ptr<HttpServer> s(new HttpServer);
  s->impl_ = std::make_unique<Impl>();
  Impl& impl = *s->impl_;
  impl.router = router;
  impl.opts = opts;
  s->address_ = got;

  unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
  unsigned threads = opts.threads > 1 ? static_cast<unsigned>(opts.threads) : 0;
  impl.daemon = Mhd().MHD_start_daemon(
      flags, 0, nullptr, nullptr, OnRequest, &impl, MHD_OPTION_LISTEN_SOCKET, fd.get(),
      MHD_OPTION_NOTIFY_COMPLETED, OnCompleted, &impl, MHD_OPTION_CONNECTION_LIMIT,
      opts.connection_limit, MHD_OPTION_CONNECTION_TIMEOUT, opts.idle_timeout_s,
      MHD_OPTION_EXTERNAL_LOGGER, OnMhdLog, nullptr, MHD_OPTION_THREAD_POOL_SIZE, threads,
      MHD_OPTION_END);
  if (!impl.daemon)
    return Unavailable("listen " + got.ToString() + ": libmicrohttpd did not start");
  impl.listen_fd = std::move(fd);  // MHD uses it; we close it after MHD stops
  return s;
}

HttpServer::~HttpServer() {
  Stop();
}

HttpServer::Load HttpServer::load() const {
  if (!impl_) return {};
  std::lock_guard lock(impl_->mu);
  return Load{impl_->pending.size(), impl_->streams.size()};
}

void HttpServer::Stop() {
  if (!impl_ || !impl_->daemon) return;
  Impl& impl = *impl_;
  Mhd().MHD_quiesce_daemon(impl.daemon);
  impl.stopping = true;
  std::set<std::shared_ptr<RequestCtx>> pending;
  {
    std::lock_guard lock(impl.mu);
    pending.swap(impl.pending);
  }
  for (const auto& ctx : pending)
    ctx->Complete(HttpResponse::Error(Unavailable("server is stopping")));
  {
    // Held while waking: StreamFree takes this lock before it deletes a
    // StreamCtx, so none can vanish under us. MHD runs free callbacks
    // without its own locks held, so the order cannot deadlock.
    std::lock_guard lock(impl.mu);
    for (StreamCtx* sc : impl.streams) sc->Unpark();
  }
  // Give the event loops a moment to send those answers and stream ends:
  // MHD_stop_daemon closes connections without flushing them.
  auto deadline = Clock::now() + std::chrono::milliseconds(500);
  for (;;) {
    bool flushed = true;
    for (const auto& ctx : pending) {
      std::lock_guard lock(ctx->mu);
      flushed &= ctx->finished;
    }
    {
      std::lock_guard lock(impl.mu);
      flushed &= impl.streams.empty();
    }
    if (flushed || Clock::now() > deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  Mhd().MHD_stop_daemon(impl.daemon);
  impl.daemon = nullptr;
  impl.listen_fd.Reset();
}

}  // namespace kiln::http
