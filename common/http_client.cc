#include "common/http_client.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <span>

#include "common/byte_buffer.h"
#include "common/strings.h"

namespace kiln {
namespace {

using Clock = std::chrono::steady_clock;

constexpr auto kConnectTimeout = std::chrono::seconds(5);
constexpr size_t kMaxHeaderBytes = 64 << 10;
// recv sizes: small for a small reply, doubling while reads fill them, so
// a large body (an image stream) arrives in few system calls.
constexpr size_t kFirstReadPiece = 16 << 10;
constexpr size_t kMaxReadPiece = 256 << 10;

// Milliseconds poll() may wait before the deadline (-1: no deadline).
int PollMs(std::optional<Clock::time_point> deadline) {
  if (!deadline) return -1;
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(*deadline - Clock::now());
  return left.count() <= 0 ? 0 : static_cast<int>(std::min<int64_t>(left.count(), INT32_MAX));
}

// How a reply's body is delimited (RFC 9112 section 6.3).
enum class Framing { kNone, kLength, kChunked, kUntilClose };

}  // namespace

// One request on the client's connection: the parts of a transfer that need
// the socket, its read buffer and the request's deadline.
class HttpClient::Exchange {
 public:
  Exchange(HttpClient* c, std::string what, std::optional<Clock::time_point> deadline)
      : c_(c), what_(std::move(what)), deadline_(deadline) {}

  // Why the exchange failed, as the caller reports it.
  Status Fail(const std::string& why) const { return Unavailable(what_ + ": " + why); }
  Status TimedOut() const { return Timeout(what_ + ": timed out"); }

  // Waits until fd is ready for events; false with *st set on timeout.
  bool Wait(short events, short* got, Status* st) {
    pollfd p{c_->fd_, events, 0};
    for (;;) {
      int n = ::poll(&p, 1, PollMs(deadline_));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        *st = Fail(fmt::format("poll: {}", std::strerror(errno)));
        return false;
      }
      if (n == 0) {
        *st = TimedOut();
        return false;
      }
      *got = p.revents;
      return true;
    }
  }

  // Sends the request. *answered is set when the server answered before
  // taking the whole body (an early error reply): the caller reads it.
  Status Send(std::string_view head, std::span<const std::string_view> body, bool* answered) {
    *answered = false;
    size_t sent = 0, total = head.size();
    for (std::string_view piece : body) total += piece.size();
    size_t piece = 0, piece_off = 0;  // the first body byte not sent yet
    while (sent < total) {
      // The rest of the head, then body pieces from where the last send
      // stopped, a bounded number per call.
      constexpr int kMaxIov = 64;
      iovec iov[kMaxIov];
      int n = 0;
      if (sent < head.size())
        iov[n++] = {const_cast<char*>(head.data() + sent), head.size() - sent};
      for (size_t i = piece, off = piece_off; i < body.size() && n < kMaxIov; ++i, off = 0)
        if (body[i].size() > off)
          iov[n++] = {const_cast<char*>(body[i].data() + off), body[i].size() - off};
      msghdr msg{};
      msg.msg_iov = iov;
      msg.msg_iovlen = static_cast<size_t>(n);
      ssize_t w = ::sendmsg(c_->fd_, &msg, MSG_NOSIGNAL);
      if (w > 0) {
        size_t k = static_cast<size_t>(w);
        size_t from_head = sent < head.size() ? std::min(k, head.size() - sent) : 0;
        sent += k;
        for (k -= from_head; k > 0 && piece < body.size();) {
          size_t take = std::min(k, body[piece].size() - piece_off);
          k -= take;
          piece_off += take;
          if (piece_off == body[piece].size()) ++piece, piece_off = 0;
        }
        continue;
      }
      if (w < 0 && errno == EINTR) continue;
      if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
        if (sent > 0) *answered = true;  // perhaps an early reply; the read will tell
        return sent > 0 ? Status::Ok() : Fail(fmt::format("send: {}", std::strerror(errno)));
      }
      short got = 0;
      Status st;
      if (!Wait(POLLOUT | POLLIN, &got, &st)) return st;
      if ((got & POLLIN) && sent >= head.size()) {
        *answered = true;
        return Status::Ok();
      }
    }
    return Status::Ok();
  }

  // Reads more bytes into the buffer; false at end of stream (*st stays ok)
  // or on error.
  bool Fill(Status* st) {
    for (;;) {
      ssize_t r = ::recv(c_->fd_, buf_.Prepare(read_piece_), read_piece_, 0);
      if (r > 0) {
        buf_.Commit(static_cast<size_t>(r));
        if (static_cast<size_t>(r) == read_piece_)
          read_piece_ = std::min(2 * read_piece_, kMaxReadPiece);
        got_any_ = true;
        return true;
      }
      if (r == 0) return false;
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) {
        *st = Fail(fmt::format("receive: {}", std::strerror(errno)));
        return false;
      }
      short got = 0;
      if (!Wait(POLLIN, &got, st)) return false;
    }
  }

  // True once any byte of the reply arrived (a reused connection that the
  // server had closed gives none: the request may be sent again).
  bool got_any() const { return got_any_; }

  // Reads one header block (status line and fields) of the reply.
  Status ReadHead(HttpReply* reply, int* minor_version) {
    size_t end;
    while ((end = buf_.view().find("\r\n\r\n")) == std::string::npos) {
      if (buf_.size() > kMaxHeaderBytes) return Fail("the reply's header is over 64 KiB");
      Status st;
      if (!Fill(&st))
        return st.ok() ? Fail("the server closed the connection before replying") : st;
    }
    std::string_view head = buf_.view().substr(0, end);
    size_t eol = head.find("\r\n");
    std::string_view status_line = head.substr(0, eol);
    // "HTTP/1.1 200 OK"
    if (!StartsWith(status_line, "HTTP/1.") || status_line.size() < 12)
      return Fail(fmt::format("malformed status line \"{}\"", status_line.substr(0, 80)));
    *minor_version = status_line[7] - '0';
    auto code = ParseUint(status_line.substr(9, 3));
    if (!code || *code < 100 || *code > 999)
      return Fail(fmt::format("malformed status line \"{}\"", status_line.substr(0, 80)));
    reply->status = static_cast<long>(*code);
    reply->headers.clear();
    std::string_view fields = eol == std::string_view::npos ? "" : head.substr(eol + 2);
    for (const std::string& field : Split(fields, '\n')) {
      std::string_view line = field;  // its '\r' goes with Trim below
      size_t colon = line.find(':');
      if (colon == std::string_view::npos) continue;
      reply->headers.emplace_back(ToLower(Trim(line.substr(0, colon))),
                                  std::string(Trim(line.substr(colon + 1))));
    }
    buf_.Consume(end + 4);
    return Status::Ok();
  }

  // Hands the body to sink as it arrives. *stopped: the sink said stop.
  Status ReadBody(Framing framing, uint64_t length,
                  const std::function<bool(std::string_view)>& sink, bool* stopped) {
    *stopped = false;
    switch (framing) {
      case Framing::kNone: return Status::Ok();
      case Framing::kLength: return Deliver(length, sink, stopped);
      case Framing::kUntilClose:
        for (;;) {
          if (!buf_.empty()) {
            *stopped = !sink(buf_.view());
            buf_.Consume(buf_.size());
            if (*stopped) return Status::Ok();
          }
          Status st;
          if (!Fill(&st)) return st;
        }
      case Framing::kChunked:
        for (;;) {
          size_t eol;
          while ((eol = buf_.view().find("\r\n")) == std::string::npos) {
            if (buf_.size() > 4096) return Fail("malformed chunk size line");
            KILN_RETURN_IF_ERROR(More());
          }
          std::string_view line = buf_.view().substr(0, eol);
          line = line.substr(0, line.find(';'));  // chunk extensions
          auto size = ParseHex(Trim(line));
          if (!size) return Fail(fmt::format("malformed chunk size \"{}\"", line.substr(0, 40)));
          buf_.Consume(eol + 2);
          if (*size == 0) {
            // Trailer fields, then the empty line.
            for (;;) {
              while ((eol = buf_.view().find("\r\n")) == std::string::npos)
                KILN_RETURN_IF_ERROR(More());
              bool last = eol == 0;
              buf_.Consume(eol + 2);
              if (last) return Status::Ok();
            }
          }
          KILN_RETURN_IF_ERROR(Deliver(*size, sink, stopped));
          if (*stopped) return Status::Ok();
          while (buf_.size() < 2) KILN_RETURN_IF_ERROR(More());
          if (buf_.view().substr(0, 2) != "\r\n")
            return Fail("malformed chunk: no CRLF after its data");
          buf_.Consume(2);
        }
    }
    return Status::Ok();
  }

 private:
  // Reads more of a body that is not complete yet.
  Status More() {
    Status st;
    if (Fill(&st)) return Status::Ok();
    return st.ok() ? Fail("the server closed the connection in the reply's body") : st;
  }
  // Hands the next n bytes of the body to sink, as they arrive.
  Status Deliver(uint64_t n, const std::function<bool(std::string_view)>& sink, bool* stopped) {
    while (n > 0) {
      if (buf_.empty()) KILN_RETURN_IF_ERROR(More());
      size_t k = static_cast<size_t>(std::min<uint64_t>(n, buf_.size()));
      n -= k;
      bool go_on = sink(buf_.view().substr(0, k));
      buf_.Consume(k);
      if (!go_on) {
        *stopped = true;
        return Status::Ok();
      }
    }
    return Status::Ok();
  }
  static std::optional<uint64_t> ParseHex(std::string_view s) {
    if (s.empty() || s.size() > 15) return std::nullopt;
    uint64_t v = 0;
    for (char ch : s) {
      int d = (ch >= '0' && ch <= '9')   ? ch - '0'
              : (ch >= 'a' && ch <= 'f') ? ch - 'a' + 10
              : (ch >= 'A' && ch <= 'F') ? ch - 'A' + 10
                                         : -1;
      if (d < 0) return std::nullopt;
      v = v * 16 + static_cast<uint64_t>(d);
    }
    return v;
  }
  HttpClient* c_;
  std::string what_;
  std::optional<Clock::time_point> deadline_;
  ByteBuffer buf_;  // received, not yet taken: consumed from the front, no copying
  size_t read_piece_ = kFirstReadPiece;
  bool got_any_ = false;
};

std::string HttpReply::Header(std::string_view name) const {
  for (const auto& [k, v] : headers)
    if (k == name) return v;
  return {};
}

HttpClient::HttpClient(std::string base_url, std::string token)
    : base_url_(std::move(base_url)), token_(std::move(token)) {
  while (!base_url_.empty() && base_url_.back() == '/') base_url_.pop_back();
  // "http://host[:port][/prefix]": the only scheme kiln serves.
  std::string_view rest = base_url_;
  if (!StartsWith(rest, "http://")) {
    url_error_ = fmt::format(
        "{}: not an http:// URL (kiln serves plain HTTP; put TLS in front of it if needed)",
        base_url_);
    return;
  }
  rest.remove_prefix(7);
  size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  if (slash != std::string_view::npos) prefix_ = std::string(rest.substr(slash));
  host_header_ = std::string(authority);
  std::string_view port = "80";
  if (StartsWith(authority, "[")) {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) {
      url_error_ = fmt::format("{}: unterminated [IPv6 address]", base_url_);
      return;
    }
    host_ = std::string(authority.substr(1, close - 1));
    if (close + 1 < authority.size()) {
      if (authority[close + 1] != ':') {
        url_error_ = fmt::format("{}: expected :PORT after the IPv6 address", base_url_);
        return;
      }
      port = authority.substr(close + 2);
    }
  } else {
    size_t colon = authority.rfind(':');
    host_ = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) port = authority.substr(colon + 1);
  }
  auto p = ParseUint(port);
  if (host_.empty() || !p || *p == 0 || *p > 65535) {
    url_error_ = fmt::format("{}: expected http://HOST:PORT", base_url_);
    return;
  }
  port_ = std::string(port);
}

HttpClient::~HttpClient() {
  Disconnect();
}

void HttpClient::Disconnect() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

Status HttpClient::Connect(const std::string& what, std::optional<Clock::time_point> deadline) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* res = nullptr;
  int rc = ::getaddrinfo(host_.c_str(), port_.c_str(), &hints, &res);
  if (rc != 0) return Unavailable(fmt::format("{}: resolve {}: {}", what, host_, gai_strerror(rc)));
  std::string last = "no address";
  auto connect_deadline = Clock::now() + kConnectTimeout;
  if (deadline && *deadline < connect_deadline) connect_deadline = *deadline;
  for (addrinfo* ai = res; ai; ai = ai->ai_next) {
    int fd =
        ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
    if (fd < 0) {
      last = std::strerror(errno);
      continue;
    }
    int r = ::connect(fd, ai->ai_addr, ai->ai_addrlen);
    if (r != 0 && errno == EINPROGRESS) {
      pollfd p{fd, POLLOUT, 0};
      int n;
      do {
        n = ::poll(&p, 1, PollMs(connect_deadline));
      } while (n < 0 && errno == EINTR);
      if (n == 0) {
        ::close(fd);
        ::freeaddrinfo(res);
        return Timeout(fmt::format("{}: connect timed out", what));
      }
      int err = 0;
      socklen_t len = sizeof err;
      ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
      r = err == 0 ? 0 : -1;
      errno = err;
    }
    if (r != 0) {
      last = std::strerror(errno);
      ::close(fd);
      continue;
    }
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    fd_ = fd;
    ::freeaddrinfo(res);
    return Status::Ok();
  }
  ::freeaddrinfo(res);
  return Unavailable(fmt::format("{}: connect: {}", what, last));
}

Result<HttpReply> HttpClient::Do(std::string_view method, std::string_view path,
                                 std::string_view body, const HttpRequestOptions& opts) {
  return Perform(method, path, {&body, 1}, opts, nullptr);
}

Result<HttpReply> HttpClient::DoPieces(std::string_view method, std::string_view path,
                                       std::span<const std::string_view> body,
                                       const HttpRequestOptions& opts) {
  return Perform(method, path, body, opts, nullptr);
}

Result<HttpReply> HttpClient::Stream(std::string_view path, const DataCallback& on_data,
                                     const HttpRequestOptions& opts) {
  return Perform("GET", path, {}, opts, &on_data);
}

Result<HttpReply> HttpClient::Perform(std::string_view method, std::string_view path,
                                      std::span<const std::string_view> body,
                                      const HttpRequestOptions& opts, const DataCallback* on_data) {
  std::string what = fmt::format("{} {}{}", method, base_url_, path);
  if (!url_error_.empty()) return InvalidArgument(url_error_);
  std::optional<Clock::time_point> deadline;
  if (opts.timeout.count() > 0) deadline = Clock::now() + opts.timeout;

  const bool has_body = method != "GET" && method != "HEAD";
  std::string head =
      fmt::format("{} {}{} HTTP/1.1\r\nHost: {}\r\n", method, prefix_, path, host_header_);
  if (!token_.empty()) head += "Authorization: Bearer " + token_ + "\r\n";
  if (has_body) {
    if (!opts.content_type.empty()) head += "Content-Type: " + opts.content_type + "\r\n";
    size_t length = 0;
    for (std::string_view piece : body) length += piece.size();
    head += fmt::format("Content-Length: {}\r\n", length);
  }
  for (const auto& [k, v] : opts.headers) head += k + ": " + v + "\r\n";
  head += "\r\n";

  // A kept-alive connection the server has meanwhile closed fails before
  // any byte of the reply: then the request goes once more on a new one.
  for (int attempt = 0;; ++attempt) {
    bool reused = fd_ >= 0;
    if (!reused) KILN_RETURN_IF_ERROR(Connect(what, deadline));
    Exchange x(this, what, deadline);
    bool answered_early = false;
    Status st =
        x.Send(head, has_body ? body : std::span<const std::string_view>(), &answered_early);
    HttpReply reply;
    int minor = 1;
    if (st.ok()) {
      do {
        st = x.ReadHead(&reply, &minor);
      } while (st.ok() && reply.status >= 100 && reply.status < 200);  // 100 Continue and kin
    }
    if (!st.ok()) {
      Disconnect();
      if (reused && attempt == 0 && !x.got_any() && st.code() != Code::kTimeout) continue;
      return st;
    }
    reply.content_type = reply.Header("content-type");
    std::string te = ToLower(reply.Header("transfer-encoding"));
    std::string cl = reply.Header("content-length");
    std::string conn = ToLower(reply.Header("connection"));
    bool keep = minor >= 1 ? conn.find("close") == std::string::npos
                           : conn.find("keep-alive") != std::string::npos;
    Framing framing = Framing::kUntilClose;
    uint64_t length = 0;
    if (method == "HEAD" || reply.status == 204 || reply.status == 304) {
      framing = Framing::kNone;
    } else if (te.find("chunked") != std::string::npos) {
      framing = Framing::kChunked;
    } else if (!cl.empty()) {
      auto n = ParseUint(cl);
      if (!n) {
        Disconnect();
        return x.Fail(fmt::format("malformed Content-Length \"{}\"", cl));
      }
      framing = Framing::kLength;
      length = *n;
    }
    if (framing == Framing::kUntilClose) keep = false;
    // Error bodies are collected whole so the caller can report them.
    const bool to_caller = on_data && reply.status >= 200 && reply.status < 300;
    bool stopped = false;
    st = x.ReadBody(
        framing, length,
        [&](std::string_view piece) {
          if (to_caller) return (*on_data)(piece);
          reply.body.append(piece);
          return true;
        },
        &stopped);
    if (!st.ok() || stopped || !keep || answered_early) Disconnect();
    KILN_RETURN_IF_ERROR(st);
    return reply;
  }
}

}  // namespace kiln
