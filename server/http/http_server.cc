#include "server/http/http_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <thread>
#include <unordered_map>
#include <vector>

#include "common/log.h"
#include "server/http/connection.h"
#include "server/http/mailbox.h"

namespace kiln::http {
namespace {

using Clock = std::chrono::steady_clock;

// epoll data of the two descriptors every loop watches besides its
// connections, whose ids start above them.
constexpr uint64_t kListenId = 0;
constexpr uint64_t kMailboxId = 1;
constexpr uint64_t kFirstConnId = 2;

// How long Stop() lets the loops send the answers and stream ends it
// caused before closing what is left.
constexpr auto kStopGrace = std::chrono::milliseconds(500);

std::string RemoteOf(const sockaddr_storage& ss) {
  char host[INET6_ADDRSTRLEN] = {};
  if (ss.ss_family == AF_INET) {
    const auto* sin = reinterpret_cast<const sockaddr_in*>(&ss);
    ::inet_ntop(AF_INET, &sin->sin_addr, host, sizeof host);
    return fmt::format("{}:{}", host, ntohs(sin->sin_port));
  }
  if (ss.ss_family == AF_INET6) {
    const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(&ss);
    ::inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof host);
    return fmt::format("[{}]:{}", host, ntohs(sin6->sin6_port));
  }
  return "";
}

}  // namespace

// One event loop: a thread with its epoll set, the connections it owns and
// the mailbox through which other threads reach them.
struct Loop {
  UniqueFd epoll_fd;
  std::shared_ptr<Mailbox> mailbox;
  std::unordered_map<uint64_t, std::unique_ptr<Connection>> conns;
  uint64_t next_id = kFirstConnId;
  bool listening = false;
  std::thread thread;
};

struct HttpServer::Impl {
  ServerShared shared;
  UniqueFd listen_fd;
  std::vector<std::unique_ptr<Loop>> loops;
  std::atomic<size_t> next_loop{0};  // new connections go round the loops
  bool stopped = false;

  void Run(Loop& loop);
  void Accept(Loop& loop);
  void Adopt(Loop& loop, UniqueFd fd, std::string remote);
  void Listen(Loop& loop, bool on);
};

void HttpServer::Impl::Listen(Loop& loop, bool on) {
  if (loop.listening == on) return;
  if (on) {
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLEXCLUSIVE;
    ev.data.u64 = kListenId;
    if (::epoll_ctl(loop.epoll_fd.get(), EPOLL_CTL_ADD, listen_fd.get(), &ev) != 0) return;
  } else {
    ::epoll_ctl(loop.epoll_fd.get(), EPOLL_CTL_DEL, listen_fd.get(), nullptr);
  }
  loop.listening = on;
}

void HttpServer::Impl::Adopt(Loop& loop, UniqueFd fd, std::string remote) {
  uint64_t id = loop.next_id++;
  int raw = fd.get();
  loop.conns.emplace(id, std::make_unique<Connection>(id, std::move(fd), std::move(remote), &shared,
                                                      loop.mailbox));
  // Edge-triggered, both directions registered once: the connection
  // remembers readiness, so no epoll_ctl per request. Registering reports
  // what is already waiting, so a request sent with the connect is seen.
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
  ev.data.u64 = id;
  if (::epoll_ctl(loop.epoll_fd.get(), EPOLL_CTL_ADD, raw, &ev) != 0) {
    log::Warn("http", "epoll_ctl failed for a new connection", {{"error", std::strerror(errno)}});
    loop.conns.erase(id);
  }
}

void HttpServer::Impl::Accept(Loop& loop) {
  for (int i = 0; i < 64; ++i) {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    int fd = ::accept4(listen_fd.get(), reinterpret_cast<sockaddr*>(&ss), &len,
                       SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      // Out of descriptors or memory: stop accepting on this loop until
      // its next sweep rather than spin on a listening socket that stays
      // readable.
      log::Warn("http", "accept failed; pausing new connections for a second",
                {{"error", std::strerror(errno)}});
      Listen(loop, false);
      return;
    }
    UniqueFd conn_fd(fd);
    if (shared.connections.load(std::memory_order_relaxed) >= shared.opts.connection_limit) {
      log::Debug("http", "connection limit reached; refused one",
                 {{"limit", shared.opts.connection_limit}});
      continue;
    }
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    // Spread connections evenly over the loops: whichever loop the kernel
    // woke accepts, and hands every other one on.
    size_t target = next_loop.fetch_add(1, std::memory_order_relaxed) % loops.size();
    Loop& to = *loops[target];
    if (&to == &loop) {
      Adopt(loop, std::move(conn_fd), RemoteOf(ss));
    } else {
      to.mailbox->Post(static_cast<uint64_t>(conn_fd.Release()), Mailbox::Kind::kAdopt);
    }
  }
}

void HttpServer::Impl::Run(Loop& loop) {
  std::vector<epoll_event> events(256);
  std::vector<Mailbox::Item> items;
  auto next_sweep = Clock::now() + std::chrono::seconds(1);
  bool stopping = false;
  Clock::time_point deadline;

  auto reap = [&loop](uint64_t id) {
    auto it = loop.conns.find(id);
    if (it != loop.conns.end() && it->second->closed()) loop.conns.erase(it);
  };

  for (;;) {
    int timeout_ms = stopping ? 10 : 1000;
    int n = ::epoll_wait(loop.epoll_fd.get(), events.data(), static_cast<int>(events.size()),
                         timeout_ms);
    for (int i = 0; i < n; ++i) {
      uint64_t id = events[i].data.u64;
      if (id == kListenId) {
        if (!stopping) Accept(loop);
      } else if (id == kMailboxId) {
        loop.mailbox->Take(&items);
        for (const Mailbox::Item& item : items) {
          switch (item.kind) {
            case Mailbox::Kind::kAdopt: {
              UniqueFd fd(static_cast<int>(item.conn));
              if (stopping) break;
              sockaddr_storage ss{};
              socklen_t len = sizeof ss;
              ::getpeername(fd.get(), reinterpret_cast<sockaddr*>(&ss), &len);
              Adopt(loop, std::move(fd), RemoteOf(ss));
              break;
            }
            case Mailbox::Kind::kStop: {
              stopping = true;
              deadline = Clock::now() + kStopGrace;
              Listen(loop, false);
              std::vector<uint64_t> ids;
              for (const auto& [cid, c] : loop.conns) ids.push_back(cid);
              for (uint64_t cid : ids) {
                auto it = loop.conns.find(cid);
                if (it == loop.conns.end()) continue;
                it->second->OnStop();
                reap(cid);
              }
              break;
            }
            case Mailbox::Kind::kAnswer:
            case Mailbox::Kind::kWake: {
              auto it = loop.conns.find(item.conn);
              if (it == loop.conns.end()) break;
              if (item.kind == Mailbox::Kind::kAnswer)
                it->second->OnAnswer();
              else
                it->second->OnWake();
              reap(item.conn);
              break;
            }
          }
        }
      } else {
        auto it = loop.conns.find(id);
        if (it == loop.conns.end()) continue;
        it->second->OnEvents(events[i].events);
        reap(id);
      }
    }

    auto now = Clock::now();
    if (stopping) {
      if (loop.conns.empty() || now >= deadline) break;
      continue;
    }
    if (now >= next_sweep) {
      next_sweep = now + std::chrono::seconds(1);
      Listen(loop, true);  // after an accept failure
      auto idle_since = now - std::chrono::seconds(shared.opts.idle_timeout_s);
      for (auto it = loop.conns.begin(); it != loop.conns.end();) {
        if (it->second->IdleSince(idle_since)) {
          it = loop.conns.erase(it);
        } else {
          it->second->ReleaseBuffers();
          ++it;
        }
      }
    }
  }
  loop.conns.clear();  // closes what is left; streams hear Closed() on this thread
}

Result<std::unique_ptr<HttpServer>> HttpServer::Start(const HttpServerOptions& opts,
                                                      const Router* router) {
  KILN_ASSIGN_OR_RETURN(ListenAddress want, ParseListenAddress(opts.listen));
  KILN_ASSIGN_OR_RETURN(UniqueFd fd, BindSocket(want, SOCK_STREAM));
  KILN_ASSIGN_OR_RETURN(ListenAddress got, LocalAddress(fd.get()));
  got.host = want.host;
  int flags = ::fcntl(fd.get(), F_GETFL);
  if (flags < 0 || ::fcntl(fd.get(), F_SETFL, flags | O_NONBLOCK) != 0)
    return ErrnoError("listen " + got.ToString() + ": O_NONBLOCK", errno);
  // A client that goes away mid-answer must not kill the server: sends use
  // MSG_NOSIGNAL, but sendfile(2) has no such flag.
  struct sigaction old {};
  if (::sigaction(SIGPIPE, nullptr, &old) == 0 && old.sa_handler == SIG_DFL)
    ::signal(SIGPIPE, SIG_IGN);

  std::unique_ptr<HttpServer> s(new HttpServer);
  s->impl_ = std::make_unique<Impl>();
  Impl& impl = *s->impl_;
  impl.shared.router = router;
  impl.shared.opts = opts;
  impl.listen_fd = std::move(fd);
  s->address_ = got;

  int threads = std::max(1, opts.threads);
  for (int i = 0; i < threads; ++i) {
    auto loop = std::make_unique<Loop>();
    loop->epoll_fd = UniqueFd(::epoll_create1(EPOLL_CLOEXEC));
    if (!loop->epoll_fd.valid()) return ErrnoError("epoll_create1", errno);
    KILN_ASSIGN_OR_RETURN(loop->mailbox, Mailbox::Create());
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = kMailboxId;
    if (::epoll_ctl(loop->epoll_fd.get(), EPOLL_CTL_ADD, loop->mailbox->fd(), &ev) != 0)
      return ErrnoError("epoll_ctl", errno);
    impl.Listen(*loop, true);
    if (!loop->listening) return ErrnoError("epoll_ctl on the listening socket", errno);
    impl.loops.push_back(std::move(loop));
  }
  for (auto& loop : impl.loops) {
    Loop* l = loop.get();
    l->thread = std::thread([&impl, l] {
      ::pthread_setname_np(::pthread_self(), "kiln-http");
      impl.Run(*l);
    });
  }
  return s;
}

HttpServer::~HttpServer() {
  Stop();
}

HttpServer::Load HttpServer::load() const {
  if (!impl_) return {};
  return Load{impl_->shared.pending.load(std::memory_order_relaxed),
              impl_->shared.streams.load(std::memory_order_relaxed)};
}

void HttpServer::Stop() {
  if (!impl_ || impl_->stopped) return;
  Impl& impl = *impl_;
  impl.stopped = true;
  impl.shared.stopping = true;
  for (auto& loop : impl.loops) loop->mailbox->Post(0, Mailbox::Kind::kStop);
  for (auto& loop : impl.loops)
    if (loop->thread.joinable()) loop->thread.join();
  for (auto& loop : impl.loops) loop->mailbox->Close();
  impl.listen_fd.Reset();
}

}  // namespace kiln::http
