#include "bench/coord/raw_clients.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <deque>
#include <vector>

#include "bench/coord/bench_support.h"

namespace kiln::bench {

int Connect(const std::string& host, int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) Die(fmt::format("socket: {}", std::strerror(errno)));
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<uint16_t>(port));
  if (::inet_pton(AF_INET, host.c_str(), &sa.sin_addr) != 1) Die("not an IPv4 address: " + host);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0)
    Die(fmt::format("connect {}:{}: {}", host, port, std::strerror(errno)));
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

// Writes what it can of out[*sent...]; false when the peer is gone.
bool WriteSome(int fd, const std::string& out, size_t* sent) {
  while (*sent < out.size()) {
    ssize_t n = ::send(fd, out.data() + *sent, out.size() - *sent, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      *sent += static_cast<size_t>(n);
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      return true;
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else {
      return false;
    }
  }
  return true;
}

// Appends what is readable to *in; false on EOF or error.
bool ReadSome(int fd, std::string* in) {
  char buf[65536];
  for (;;) {
    ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n > 0) {
      in->append(buf, static_cast<size_t>(n));
      if (static_cast<size_t>(n) < sizeof buf) return true;
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      return true;
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else {
      return false;
    }
  }
}

namespace {

using Clock = std::chrono::steady_clock;

bool IEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i])))
      return false;
  return true;
}

// ---- HTTP ---------------------------------------------------------------------

struct HttpConn {
  int fd = -1;
  int id = 0;
  uint64_t seq = 0;
  struct InFlight {
    HttpCall call;
    Clock::time_point sent_at;
  };
  std::deque<InFlight> calls;  // sent, not yet answered, oldest first
  HttpCall next;
  std::string out, in;
  size_t sent = 0;
};

// One complete answer at the front of in: its status and body, and how many
// bytes it took; 0 when more bytes are needed.
size_t ParseAnswer(std::string_view in, int* status, std::string_view* body) {
  size_t end = in.find("\r\n\r\n");
  if (end == std::string_view::npos) return 0;
  if (in.substr(0, 9) != "HTTP/1.1 " || end < 12)
    Die("not an HTTP/1.1 answer: " + std::string(in.substr(0, 80)));
  *status = (in[9] - '0') * 100 + (in[10] - '0') * 10 + (in[11] - '0');
  size_t length = 0;
  bool has_length = false;
  for (size_t line = in.find("\r\n") + 2; line < end;) {
    size_t eol = in.find("\r\n", line);
    size_t colon = in.find(':', line);
    if (colon < eol && IEquals(in.substr(line, colon - line), "content-length")) {
      length = 0;
      for (size_t i = colon + 1; i < eol; ++i)
        if (in[i] >= '0' && in[i] <= '9') length = length * 10 + static_cast<size_t>(in[i] - '0');
      has_length = true;
    }
    line = eol + 2;
  }
  if (!has_length) Die("an answer without Content-Length: " + std::string(in.substr(0, end)));
  if (in.size() < end + 4 + length) return 0;
  *body = in.substr(end + 4, length);
  return end + 4 + length;
}

}  // namespace

HttpTarget ParseHttpUrl(const std::string& url, const std::string& token) {
  const std::string prefix = "http://";
  size_t colon = url.rfind(':');
  if (url.compare(0, prefix.size(), prefix) != 0 || colon < prefix.size())
    Die("expected http://HOST:PORT, got " + url);
  HttpTarget t;
  t.host = url.substr(prefix.size(), colon - prefix.size());
  t.port = std::atoi(url.c_str() + colon + 1);
  t.token = token;
  return t;
}

void HttpLoop(const HttpTarget& target, int first_conn, int conns, int depth, const MakeCall& make,
              const std::atomic<bool>& stop, std::atomic<uint64_t>& done,
              std::atomic<uint64_t>& lost) {
  int ep = ::epoll_create1(EPOLL_CLOEXEC);
  std::vector<HttpConn> cs(static_cast<size_t>(conns));
  const std::string head_tail = fmt::format(
      " HTTP/1.1\r\nHost: {}:{}\r\nAuthorization: Bearer {}\r\nContent-Type: "
      "application/json\r\nContent-Length: ",
      target.host, target.port, target.token);
  int busy = 0;
  auto open = [&](HttpConn& c) {
    c.fd = Connect(target.host, target.port);
    c.out.clear();
    c.sent = 0;
    c.in.clear();
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.ptr = &c;
    ::epoll_ctl(ep, EPOLL_CTL_ADD, c.fd, &ev);
  };
  // Tops the connection up to `depth` requests in flight, written back to
  // back (HTTP/1.1 pipelining when depth > 1).
  auto issue = [&](HttpConn& c) {
    bool added = false;
    while (static_cast<int>(c.calls.size()) < depth && !stop.load(std::memory_order_relaxed) &&
           make(c.id, c.seq++, &c.next)) {
      c.out.append(c.next.method).append(" ").append(c.next.path).append(head_tail);
      c.out.append(fmt::format_int(c.next.body.size()).c_str()).append("\r\n\r\n");
      c.out.append(c.next.body);
      c.calls.push_back({c.next, Clock::now()});
      ++busy;
      added = true;
    }
    if (!added) return;
    if (!WriteSome(c.fd, c.out, &c.sent)) Die("kiln closed a connection while we sent");
    if (c.sent == c.out.size()) {
      c.out.clear();
      c.sent = 0;
      return;
    }
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT;
    ev.data.ptr = &c;
    ::epoll_ctl(ep, EPOLL_CTL_MOD, c.fd, &ev);
  };
  for (int i = 0; i < conns; ++i) {
    HttpConn& c = cs[static_cast<size_t>(i)];
    c.id = first_conn + i;
    open(c);
    issue(c);
  }
  std::vector<epoll_event> events(256);
  auto last_check = Clock::now();
  while (busy > 0) {
    int n = ::epoll_wait(ep, events.data(), static_cast<int>(events.size()), 100);
    for (int k = 0; k < n; ++k) {
      auto& c = *static_cast<HttpConn*>(events[k].data.ptr);
      if (events[k].events & EPOLLOUT) {
        if (!WriteSome(c.fd, c.out, &c.sent)) Die("kiln closed a connection while we sent");
        if (c.sent == c.out.size()) {
          c.out.clear();
          c.sent = 0;
          epoll_event ev{};
          ev.events = EPOLLIN;
          ev.data.ptr = &c;
          ::epoll_ctl(ep, EPOLL_CTL_MOD, c.fd, &ev);
        }
      }
      if (!(events[k].events & (EPOLLIN | EPOLLHUP | EPOLLERR))) continue;
      bool open_ok = ReadSome(c.fd, &c.in);
      size_t used = 0;
      while (!c.calls.empty()) {
        int status = 0;
        std::string_view body;
        size_t u = ParseAnswer(std::string_view(c.in).substr(used), &status, &body);
        if (u == 0) break;
        const HttpCall& call = c.calls.front().call;
        if (status < 200 || status > 299)
          Die(fmt::format("{} {}: HTTP {}: {}", call.method, call.path, status, body));
        if (call.updates > 1 && body.find("\"error\"") != std::string_view::npos)
          Die(fmt::format("{} {}: an update failed: {}", call.method, call.path, body));
        done.fetch_add(static_cast<uint64_t>(call.updates), std::memory_order_relaxed);
        c.calls.pop_front();
        --busy;
        used += u;
      }
      c.in.erase(0, used);
      if (!open_ok) {
        if (!c.calls.empty())
          Die(fmt::format("{} {}: kiln closed the connection before answering",
                          c.calls.front().call.method, c.calls.front().call.path));
        ::close(c.fd);
        open(c);
      }
      if (used > 0 || !open_ok) issue(c);
    }
    // Requests unanswered for 10 s are counted and their connection replaced.
    auto now = Clock::now();
    if (now - last_check > std::chrono::seconds(1)) {
      last_check = now;
      for (HttpConn& c : cs) {
        if (c.calls.empty() || now - c.calls.front().sent_at < std::chrono::seconds(10)) continue;
        lost.fetch_add(c.calls.size(), std::memory_order_relaxed);
        fmt::print(stderr, "unanswered after 10 s: {} {} ({} in flight)\n",
                   c.calls.front().call.method, c.calls.front().call.path, c.calls.size());
        ::close(c.fd);
        busy -= static_cast<int>(c.calls.size());
        c.calls.clear();
        open(c);
        issue(c);
      }
    }
  }
  for (HttpConn& c : cs) ::close(c.fd);
  ::close(ep);
}

// ---- ZooKeeper ------------------------------------------------------------------

// Jute encoding: big-endian ints and longs, strings and buffers as a length
// and bytes.
void PutInt(std::string* out, int32_t v) {
  uint32_t u = htonl(static_cast<uint32_t>(v));
  out->append(reinterpret_cast<const char*>(&u), 4);
}
void PutLong(std::string* out, int64_t v) {
  PutInt(out, static_cast<int32_t>(static_cast<uint64_t>(v) >> 32));
  PutInt(out, static_cast<int32_t>(static_cast<uint64_t>(v) & 0xffffffffu));
}
void PutBytes(std::string* out, std::string_view s) {
  PutInt(out, static_cast<int32_t>(s.size()));
  out->append(s);
}
int32_t GetInt(const char* p) {
  uint32_t u;
  std::memcpy(&u, p, 4);
  return static_cast<int32_t>(ntohl(u));
}

namespace {

// Reads exactly n bytes (blocking; the handshake only).
std::string ReadExactly(int fd, size_t n) {
  std::string s(n, '\0');
  size_t got = 0;
  while (got < n) {
    ssize_t r = ::recv(fd, s.data() + got, n - got, 0);
    if (r <= 0) Die("zookeeper: connection closed during the handshake");
    got += static_cast<size_t>(r);
  }
  return s;
}

constexpr int32_t kOpCreate = 1;
constexpr int32_t kOpSetData = 5;
constexpr int32_t kOpCloseSession = -11;
constexpr int32_t kZNodeExists = -110;

struct ZkConn {
  int fd = -1;
  int id = 0;
  uint64_t seq = 0;
  int32_t xid = 0;
  int inflight = 0;
  bool ended = false;  // make ran out
  std::string out, in;
  size_t sent = 0;
};

}  // namespace

void ZkHandshake(int fd) {
  std::string req;
  PutInt(&req, 0);                        // protocolVersion
  PutLong(&req, 0);                       // lastZxidSeen
  PutInt(&req, 30000);                    // timeOut (ms)
  PutLong(&req, 0);                       // sessionId: a new session
  PutBytes(&req, std::string(16, '\0'));  // passwd
  req.push_back('\0');                    // readOnly = false
  std::string framed;
  PutInt(&framed, static_cast<int32_t>(req.size()));
  framed += req;
  size_t sent = 0;
  while (sent < framed.size())
    if (!WriteSome(fd, framed, &sent)) Die("zookeeper: connection closed during the handshake");
  int32_t len = GetInt(ReadExactly(fd, 4).data());
  std::string resp = ReadExactly(fd, static_cast<size_t>(len));
  // protocolVersion, timeOut, sessionId, passwd: a zero timeout means refused.
  if (resp.size() < 16 || GetInt(resp.data() + 4) <= 0) Die("zookeeper: session refused");
}

void ZkLoop(const std::string& hostport, int sessions, int inflight, bool create,
            const std::string& data, const MakeZkPath& make, const std::atomic<bool>& stop,
            std::atomic<uint64_t>& done) {
  size_t colon = hostport.rfind(':');
  if (colon == std::string::npos) Die("expected HOST:PORT for ZooKeeper, got " + hostport);
  std::string host = hostport.substr(0, colon);
  int port = std::atoi(hostport.c_str() + colon + 1);
  int ep = ::epoll_create1(EPOLL_CLOEXEC);
  std::vector<ZkConn> cs(static_cast<size_t>(sessions));
  std::string path;
  int live = 0;  // sessions with requests in flight or more to send
  auto watch = [&](ZkConn& c) {
    epoll_event ev{};
    ev.events = EPOLLIN | (c.sent < c.out.size() ? EPOLLOUT : 0u);
    ev.data.ptr = &c;
    ::epoll_ctl(ep, EPOLL_CTL_MOD, c.fd, &ev);
  };
  // Tops the session up to `inflight` requests and sends what it can.
  auto fill = [&](ZkConn& c) {
    if (c.sent == c.out.size()) {
      c.out.clear();
      c.sent = 0;
    }
    while (c.inflight < inflight && !c.ended) {
      if (stop.load(std::memory_order_relaxed) || !make(c.id, c.seq++, &path)) {
        c.ended = true;
        break;
      }
      size_t at = c.out.size();
      PutInt(&c.out, 0);  // length, patched below
      PutInt(&c.out, ++c.xid);
      PutInt(&c.out, create ? kOpCreate : kOpSetData);
      PutBytes(&c.out, path);
      PutBytes(&c.out, data);
      if (create) {
        PutInt(&c.out, 1);  // one ACL: world:anyone, all permissions
        PutInt(&c.out, 31);
        PutBytes(&c.out, "world");
        PutBytes(&c.out, "anyone");
        PutInt(&c.out, 0);  // persistent
      } else {
        PutInt(&c.out, -1);  // any version
      }
      uint32_t len = htonl(static_cast<uint32_t>(c.out.size() - at - 4));
      std::memcpy(c.out.data() + at, &len, 4);
      ++c.inflight;
    }
    if (!WriteSome(c.fd, c.out, &c.sent)) Die("zookeeper closed a session");
    watch(c);
  };
  for (int i = 0; i < sessions; ++i) {
    ZkConn& c = cs[static_cast<size_t>(i)];
    c.id = i;
    c.fd = Connect(host, port);
    ZkHandshake(c.fd);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.ptr = &c;
    ::epoll_ctl(ep, EPOLL_CTL_ADD, c.fd, &ev);
    ++live;
  }
  // Closes a session that is done, so that ZooKeeper does not keep it
  // until it expires.
  auto finish = [&](ZkConn& c) {
    if (!c.ended || c.inflight != 0 || c.fd < 0) return;
    std::string bye;
    PutInt(&bye, 8);
    PutInt(&bye, ++c.xid);
    PutInt(&bye, kOpCloseSession);
    size_t sent = 0;
    (void)WriteSome(c.fd, bye, &sent);
    ::epoll_ctl(ep, EPOLL_CTL_DEL, c.fd, nullptr);
    ::close(c.fd);
    c.fd = -1;
    --live;
  };
  for (ZkConn& c : cs) {
    fill(c);
    finish(c);
  }
  std::vector<epoll_event> events(256);
  while (live > 0) {
    int n = ::epoll_wait(ep, events.data(), static_cast<int>(events.size()), 100);
    for (int k = 0; k < n; ++k) {
      auto& c = *static_cast<ZkConn*>(events[k].data.ptr);
      if (events[k].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
        if (!ReadSome(c.fd, &c.in)) Die("zookeeper closed a session");
        size_t at = 0;
        uint64_t ok = 0;
        // Each reply: length, xid, zxid, err, then the body (ignored).
        while (c.in.size() - at >= 4) {
          auto len = static_cast<size_t>(GetInt(c.in.data() + at));
          if (c.in.size() - at - 4 < len) break;
          const char* h = c.in.data() + at + 4;
          int32_t xid = GetInt(h);
          int32_t err = GetInt(h + 12);
          at += 4 + len;
          if (xid < 0) continue;  // a watch event or ping answer: none expected
          --c.inflight;
          if (err == 0 || (create && err == kZNodeExists))
            ++ok;
          else
            Die(fmt::format("zookeeper: request failed with error {}", err));
        }
        c.in.erase(0, at);
        done.fetch_add(ok, std::memory_order_relaxed);
      }
      fill(c);
      finish(c);
    }
    if (n == 0)
      for (ZkConn& c : cs) finish(c);
  }
  ::close(ep);
}

}  // namespace kiln::bench
