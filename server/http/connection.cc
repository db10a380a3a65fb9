#include "server/http/connection.h"

#include <fmt/format.h>
#include <sys/epoll.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <ctime>

#include "common/log.h"
#include "server/http/response_head.h"

namespace kiln::http {
namespace {

constexpr size_t kReadSize = 16 * 1024;
// A refused body up to this size is read and dropped so that the answer
// reaches a client still sending it and the connection stays usable;
// beyond it the connection is closed after the answer.
constexpr uint64_t kMaxDiscard = 1 << 20;
// The pieces a streamed body is read in: small at first (a watch event is
// a few hundred bytes, and 1,000 streams each holding a large buffer for it
// would be megabytes), doubling while the body fills them (image streams
// are gigabytes: fewer, larger writes). The chunk-size line is a fixed 8
// hex digits so the data can be read straight into place after it.
constexpr size_t kFirstStreamPiece = 4096 - 12;
constexpr size_t kMaxStreamPiece = 128 * 1024;
constexpr size_t kChunkPrefix = 10;  // 8 hex digits, CRLF

HttpResponse EarlyError(int status, const HttpRequest& req, size_t max_body) {
  Status s = status == 404 ? NotFound("no such API path: " + req.path)
             : status == 405
                 ? Status(Code::kInvalidArgument,
                          fmt::format("method {} is not allowed on {}", req.method, req.path))
                 : TooLarge(fmt::format("request body larger than {} bytes", max_body));
  HttpResponse r = HttpResponse::Error(s);
  r.status = status;
  return r;
}

}  // namespace

void Exchange::Complete(HttpResponse r) {
  bool post;
  {
    std::lock_guard lock(mu);
    if (ready) return;
    response = std::move(r);
    ready = true;
    post = !in_dispatch;
  }
  if (post) mailbox->Post(conn, Mailbox::Kind::kAnswer);
}

void StreamParking::Park() {
  std::lock_guard lock(mu_);
  parked_ = true;
}

void StreamParking::Unpark() {
  {
    std::lock_guard lock(mu_);
    if (!parked_ || detached_) return;
    parked_ = false;
  }
  mailbox_->Post(conn_, Mailbox::Kind::kWake);
}

bool StreamParking::parked() {
  std::lock_guard lock(mu_);
  return parked_;
}

void StreamParking::Detach() {
  std::lock_guard lock(mu_);
  detached_ = true;
}

Connection::Connection(uint64_t id, UniqueFd fd, std::string remote, ServerShared* server,
                       std::shared_ptr<Mailbox> mailbox)
    : id_(id),
      fd_(std::move(fd)),
      remote_(std::move(remote)),
      server_(server),
      mailbox_(std::move(mailbox)),
      last_active_(Clock::now()) {
  server_->connections.fetch_add(1, std::memory_order_relaxed);
}

Connection::~Connection() {
  Close();
  server_->connections.fetch_sub(1, std::memory_order_relaxed);
}

void Connection::Close() {
  if (state_ == State::kClosed) return;
  if (pending_) server_->pending.fetch_sub(1, std::memory_order_relaxed);
  pending_ = false;
  EndStream();
  state_ = State::kClosed;
  fd_.Reset();  // also leaves the loop's epoll set
  file_.Reset();
  ex_.reset();
}

void Connection::OnEvents(uint32_t events) {
  if (events & (EPOLLERR | EPOLLHUP)) {
    Close();  // reset, or both directions shut: nothing can be delivered
    return;
  }
  if (events & (EPOLLIN | EPOLLRDHUP)) readable_ = true;
  if (events & EPOLLOUT) writable_ = true;
  Drive();
}

void Connection::OnAnswer() {
  if (state_ != State::kHandler || !ex_) return;
  HttpResponse r;
  {
    std::lock_guard lock(ex_->mu);
    if (!ex_->ready) return;
    r = std::move(ex_->response);
  }
  StartResponse(std::move(r));
  Drive();
}

void Connection::OnWake() {
  if (state_ == State::kStream) Drive();
}

void Connection::OnStop() {
  keep_alive_ = false;
  switch (state_) {
    case State::kHead:
    case State::kBody:
    case State::kDiscard: Close(); return;
    case State::kHandler: {
      HttpResponse r;
      {
        std::lock_guard lock(ex_->mu);
        if (!ex_->ready) {
          ex_->response = HttpResponse::Error(Unavailable("server is stopping"));
          ex_->ready = true;
        }
        r = std::move(ex_->response);
      }
      StartResponse(std::move(r));
      break;
    }
    case State::kStream:
      if (chunked_out_) out_.Append("0\r\n\r\n");
      EndStream();
      state_ = State::kSending;
      break;
    case State::kSending:
    case State::kClosed: break;
  }
  Drive();
}

bool Connection::IdleSince(Clock::time_point t) {
  switch (state_) {
    case State::kHandler:
    case State::kClosed: return false;
    case State::kSending:
    case State::kStream:
      // Only a client that stopped reading. A parked stream waits for
      // news, and one just woken has not been pumped yet: neither is idle.
      return !writable_ && last_active_ < t;
    case State::kHead:
    case State::kBody:
    case State::kDiscard: return last_active_ < t;
  }
  return false;
}

void Connection::Drive() {
  while (state_ != State::kClosed) {
    if (!Flush()) return;
    switch (state_) {
      case State::kHead:
        if (!ParseHead() && !ReadMore()) return;
        break;
      case State::kBody:
      case State::kDiscard:
        if (!ParseBody() && !ReadMore()) return;
        break;
      case State::kHandler: return;
      case State::kSending: FinishExchange(); break;
      case State::kStream:
        if (!PumpStream()) return;
        break;
      case State::kClosed: return;
    }
  }
}

bool Connection::ReadMore() {
  if (!readable_) return false;
  char* p = in_.Prepare(kReadSize);
  ssize_t n = ::recv(fd_.get(), p, kReadSize, 0);
  if (n > 0) {
    in_.Commit(static_cast<size_t>(n));
    last_active_ = Clock::now();
    return true;
  }
  if (n == 0) {
    OnPeerClosed();
    return false;
  }
  if (errno == EAGAIN || errno == EWOULDBLOCK) {
    readable_ = false;
    return false;
  }
  if (errno == EINTR) return true;
  Close();
  return false;
}

void Connection::OnPeerClosed() {
  readable_ = false;
  peer_closed_ = true;
  // Mid-request, or between requests: nothing left to answer.
  if (state_ == State::kHead || state_ == State::kBody || state_ == State::kDiscard ||
      state_ == State::kStream)
    Close();
}

void Connection::DrainInput() {
  char scratch[512];
  while (readable_ && state_ != State::kClosed) {
    ssize_t n = ::recv(fd_.get(), scratch, sizeof scratch, 0);
    if (n > 0) continue;
    if (n == 0) {
      OnPeerClosed();
    } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
      readable_ = false;
    } else if (errno != EINTR) {
      Close();
    }
  }
}

bool Connection::Flush() {
  while (!out_.empty() || body_pos_ < body_.size() || file_left_ > 0) {
    if (!writable_) return false;
    ssize_t n;
    if (!out_.empty() || body_pos_ < body_.size()) {
      iovec iov[2];
      int count = 0;
      std::string_view head = out_.view();
      if (!head.empty()) iov[count++] = {const_cast<char*>(head.data()), head.size()};
      if (body_pos_ < body_.size())
        iov[count++] = {body_.data() + body_pos_, body_.size() - body_pos_};
      msghdr msg{};
      msg.msg_iov = iov;
      msg.msg_iovlen = static_cast<size_t>(count);
      n = ::sendmsg(fd_.get(), &msg, MSG_NOSIGNAL);
      if (n > 0) {
        size_t k = static_cast<size_t>(n);
        size_t from_head = std::min(k, head.size());
        out_.Consume(from_head);
        body_pos_ += k - from_head;
      }
    } else {
      off_t off = static_cast<off_t>(file_offset_);
      size_t want = static_cast<size_t>(std::min<uint64_t>(file_left_, 1 << 30));
      n = ::sendfile(fd_.get(), file_.get(), &off, want);
      if (n == 0) {
        log::Warn("http", "file shorter than its response's length", {{"remote", remote_}});
        Close();
        return false;
      }
      if (n > 0) {
        file_offset_ += static_cast<uint64_t>(n);
        file_left_ -= static_cast<uint64_t>(n);
      }
    }
    if (n > 0) {
      last_active_ = Clock::now();
      continue;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      writable_ = false;
      return false;
    }
    if (errno == EINTR) continue;
    Close();  // EPIPE, ECONNRESET: the client is gone
    return false;
  }
  if (!body_.empty()) {
    body_.clear();
    if (body_.capacity() > 64 * 1024) body_.shrink_to_fit();
    body_pos_ = 0;
  }
  file_.Reset();
  return true;
}

bool Connection::ParseHead() {
  if (in_.empty()) {
    if (peer_closed_) Close();
    return false;
  }
  RequestHead head;
  HeadParse p = ParseRequestHead(in_.view(), &head);
  switch (p.result) {
    case HeadParse::Result::kNeedMore:
      if (peer_closed_) Close();
      return false;
    case HeadParse::Result::kError: RefuseHead(p.status, p.error); return true;
    case HeadParse::Result::kDone:
      in_.Consume(p.consumed);
      BeginRequest(head);
      return true;
  }
  return false;
}

void Connection::BeginRequest(RequestHead& head) {
  ex_ = std::make_shared<Exchange>();
  ex_->mailbox = mailbox_;
  ex_->conn = id_;
  ex_->start = Clock::now();
  HttpRequest& req = ex_->req;
  req.method = std::move(head.method);
  req.headers = std::move(head.headers);
  req.remote = remote_;
  keep_alive_ = head.keep_alive && !server_->stopping.load(std::memory_order_relaxed);
  head_only_ = req.method == "HEAD";
  chunked_out_ = head.minor_version >= 1;
  early_status_ = 0;
  chunked_ = ChunkedDecoder{};

  std::string error;
  if (!DecodeTarget(head.target, &req.path, &req.query, &error)) {
    RefuseHead(400, error);
    return;
  }
  ex_->route = server_->router->Find(req, &early_status_);
  body_chunked_ = head.chunked;
  body_left_ = head.content_length;
  bool has_body = body_chunked_ || body_left_ > 0;
  max_body_ = ex_->route ? ex_->route->options.max_body : 0;
  if (ex_->route && body_left_ > max_body_) early_status_ = 413;

  if (early_status_ != 0) {
    if (!has_body) {
      StartResponse(EarlyError(early_status_, req, max_body_));
      return;
    }
    // A client waiting for 100-continue sends nothing more; a chunked or
    // large body is not worth reading to keep the connection.
    if (head.expect_continue || body_chunked_ || body_left_ > kMaxDiscard) {
      keep_alive_ = false;
      StartResponse(EarlyError(early_status_, req, max_body_));
      return;
    }
    state_ = State::kDiscard;
    return;
  }
  if (has_body) {
    if (head.expect_continue) out_.Append("HTTP/1.1 100 Continue\r\n\r\n");
    if (!body_chunked_) req.body.reserve(static_cast<size_t>(body_left_));
    state_ = State::kBody;
    return;
  }
  Dispatch();
}

bool Connection::ParseBody() {
  if (in_.empty()) {
    if (peer_closed_) Close();
    return false;
  }
  std::string_view avail = in_.view();
  if (body_chunked_) {
    size_t used = 0;
    ChunkedDecoder::Result r = chunked_.Feed(avail, &ex_->req.body, max_body_, &used);
    in_.Consume(used);
    switch (r) {
      case ChunkedDecoder::Result::kNeedMore: return false;
      case ChunkedDecoder::Result::kDone: Dispatch(); return true;
      case ChunkedDecoder::Result::kError:
        keep_alive_ = false;
        if (chunked_.too_large()) {
          StartResponse(EarlyError(413, ex_->req, max_body_));
        } else {
          ex_->req.body.clear();
          HttpResponse bad = HttpResponse::Error(InvalidArgument(chunked_.error()));
          bad.status = 400;
          StartResponse(std::move(bad));
        }
        return true;
    }
    return false;
  }
  size_t n = static_cast<size_t>(std::min<uint64_t>(body_left_, avail.size()));
  if (state_ == State::kBody) ex_->req.body.append(avail.data(), n);
  in_.Consume(n);
  body_left_ -= n;
  if (body_left_ > 0) return false;
  if (state_ == State::kBody)
    Dispatch();
  else
    StartResponse(EarlyError(early_status_, ex_->req, max_body_));
  return true;
}

void Connection::Dispatch() {
  state_ = State::kHandler;
  {
    std::lock_guard lock(ex_->mu);
    ex_->in_dispatch = true;
  }
  std::weak_ptr<Exchange> weak = ex_;
  server_->router->Dispatch(*ex_->route, ex_->req, Responder([weak](HttpResponse r) {
    if (auto ex = weak.lock()) ex->Complete(std::move(r));
  }));
  HttpResponse r;
  {
    std::lock_guard lock(ex_->mu);
    ex_->in_dispatch = false;
    if (!ex_->ready) {
      // Answered later, through the mailbox: counted as waiting until then.
      pending_ = true;
      server_->pending.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    r = std::move(ex_->response);
  }
  StartResponse(std::move(r));
}

void Connection::RefuseHead(int status, const std::string& error) {
  if (!ex_) {
    ex_ = std::make_shared<Exchange>();
    ex_->start = Clock::now();
    ex_->req.remote = remote_;
  }
  keep_alive_ = false;  // where the next request starts is unknown
  head_only_ = false;
  chunked_out_ = true;
  log::Debug("http", "refused a malformed request",
             {{"remote", remote_}, {"status", status}, {"error", error}});
  HttpResponse r = HttpResponse::Error(status == 431 ? TooLarge(error) : InvalidArgument(error));
  r.status = status;
  StartResponse(std::move(r));
}

void Connection::StartResponse(HttpResponse r) {
  if (pending_) server_->pending.fetch_sub(1, std::memory_order_relaxed);
  pending_ = false;
  if (server_->stopping.load(std::memory_order_relaxed)) keep_alive_ = false;
  if (server_->opts.on_response) {
    double secs = std::chrono::duration<double>(Clock::now() - ex_->start).count();
    server_->opts.on_response(ex_->route, ex_->req, r.status, secs);
  }
  Respond(std::move(r));
}

void Connection::Respond(HttpResponse r) {
  bool no_body = (r.status >= 100 && r.status < 200) || r.status == 204 || r.status == 304;
  bool stream = r.stream != nullptr && !no_body && !head_only_;
  if (r.stream && !stream) r.stream->Closed();       // never started
  if (stream && !chunked_out_) keep_alive_ = false;  // HTTP/1.0: the body ends with the connection

  ResponseHead head{.status = r.status,
                    .content_type = r.content_type,
                    .headers = &r.headers,
                    .keep_alive = keep_alive_};
  if (no_body) {
    head.framing = ResponseHead::Framing::kNone;
  } else if (r.stream) {
    head.framing = chunked_out_ ? ResponseHead::Framing::kChunked : ResponseHead::Framing::kClose;
  } else {
    head.framing = ResponseHead::Framing::kLength;
    head.content_length = r.file_fd >= 0 ? r.file_size : r.body.size();
  }
  RenderResponseHead(head, &out_);

  if (stream) {
    stream_ = std::move(r.stream);
    parking_ = std::make_shared<StreamParking>(mailbox_, id_);
    stream_piece_ = kFirstStreamPiece;
    server_->streams.fetch_add(1, std::memory_order_relaxed);
    in_.Release();
    state_ = State::kStream;
    return;
  }
  UniqueFd file(r.file_fd);
  if (!no_body && !head_only_) {
    if (file.valid()) {
      file_ = std::move(file);
      file_offset_ = r.file_offset;
      file_left_ = r.file_size;
    } else {
      body_ = std::move(r.body);
      body_pos_ = 0;
    }
  }
  state_ = State::kSending;
}

void Connection::FinishExchange() {
  ex_.reset();
  if (!keep_alive_ || peer_closed_) {
    Close();
    return;
  }
  state_ = State::kHead;
  // The buffers stay for the next request: freeing and allocating them per
  // request cost more than the request's parsing (glibc consolidates its
  // small free lists on every allocation of that size). The loop's sweep
  // gives them back once the connection is idle.
}

void Connection::ReleaseBuffers() {
  if (state_ == State::kHead || state_ == State::kHandler || state_ == State::kStream) {
    in_.Release();
    out_.Release();
  }
}

bool Connection::PumpStream() {
  if (readable_) DrainInput();
  if (state_ != State::kStream) return false;
  if (!writable_) return false;
  if (parking_->parked()) return false;
  if (server_->stopping.load(std::memory_order_relaxed)) {
    keep_alive_ = false;
    if (chunked_out_) out_.Append("0\r\n\r\n");
    EndStream();
    state_ = State::kSending;
    return true;
  }
  size_t prefix = chunked_out_ ? kChunkPrefix : 0;
  char* p = out_.Prepare(prefix + stream_piece_ + 2);
  ssize_t n = stream_->Read(p + prefix, stream_piece_, *parking_);
  if (n > 0) {
    size_t len = static_cast<size_t>(n);
    if (len == stream_piece_) stream_piece_ = std::min(2 * stream_piece_, kMaxStreamPiece);
    if (chunked_out_) {
      static constexpr char kHex[] = "0123456789abcdef";
      for (int i = 7; i >= 0; --i) p[7 - i] = kHex[(len >> (4 * i)) & 0xf];
      p[8] = '\r';
      p[9] = '\n';
      p[prefix + len] = '\r';
      p[prefix + len + 1] = '\n';
      out_.Commit(prefix + len + 2);
    } else {
      out_.Commit(len);
    }
    return true;
  }
  if (n == BodyStream::kWouldBlock) return false;  // parked: a kWake brings it back
  if (n == BodyStream::kEnd) {
    if (chunked_out_) out_.Append("0\r\n\r\n");
    EndStream();
    state_ = State::kSending;
    return true;
  }
  Close();  // kError: the body cannot be completed; the client sees it cut
  return false;
}

void Connection::EndStream() {
  if (!stream_) return;
  parking_->Detach();
  std::shared_ptr<BodyStream> stream = std::move(stream_);
  parking_.reset();
  server_->streams.fetch_sub(1, std::memory_order_relaxed);
  stream->Closed();
}

}  // namespace kiln::http
