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
constexpr size_t kMaxBodyRead = 256 * 1024;
constexpr size_t kMaxQueuedBodies = 64 << 20;
// After the last answer, how long the client may go on sending (its data
// is read and dropped so that closing does not reset the connection and
// lose the answer).
constexpr auto kLinger = std::chrono::seconds(2);
// Reads, parses and answers one Drive may do before it yields its loop.
constexpr int kTurnsPerDrive = 128;
// A refused body up to this size is read and dropped so that the answer
// reaches a client still sending it and the connection stays usable;
// beyond it the connection is closed after the answer.
constexpr uint64_t kMaxDiscard = 1 << 20;
// A request body is reserved this far at first; once this much of it has
// arrived it grows by up to kBodyStep (or its size, if larger) at a time.
constexpr size_t kBodyTrust = 1 << 20;
constexpr size_t kBodyStep = 8 << 20;

// The pieces a streamed body is read in: small at first (a watch event is
// a few hundred bytes, and 1,000 streams each holding a large buffer for it
// would be megabytes), doubling while the body fills them (image streams
// are gigabytes: fewer, larger writes). The chunk-size line is a fixed 8
// hex digits so the data can be read straight into place after it.
constexpr size_t kFirstStreamPiece = 4096 - 12;
constexpr size_t kMaxStreamPiece = 128 * 1024;
constexpr size_t kChunkPrefix = 10;  // 8 hex digits, CRLF
// Answers with bodies up to kJoinBody are copied behind their head, and
// ready answers are gathered up to kJoinOutput, so that pipelined answers
// leave in one send.
constexpr size_t kJoinBody = 16 * 1024;
constexpr size_t kJoinOutput = 64 * 1024;

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

// The answer can be rendered now (and owes no 100 Continue first).
bool AnswerReady(Exchange& ex) {
  std::lock_guard lock(ex.mu);
  return ex.ready && !ex.continue_pending;
}

}  // namespace

void DiscardResponse(HttpResponse& r) {
  if (r.file_fd >= 0) ::close(r.file_fd);
  r.file_fd = -1;
  if (auto stream = std::move(r.stream)) stream->Closed();
}

Exchange::~Exchange() {
  DiscardResponse(response);
}

void Exchange::Complete(HttpResponse r) {
  bool post;
  {
    std::lock_guard lock(mu);
    if (ready) {
      DiscardResponse(r);  // a second answer, or after the server's 503
      return;
    }
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
  if (closed_) return;
  closed_ = true;
  DropQueue();
  EndStream();
  fd_.Reset();  // also leaves the loop's epoll set
  file_.Reset();
  file_fd_ = -1;
  file_left_ = 0;
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
  Drive();
}

void Connection::OnWake() {
  if (wstate_ == WriteState::kStream) Drive();
}

void Connection::OnStop() {
  // Everything read gets an answer: the handlers' if they have one, 503 if
  // not. A request whose body was still arriving gets none.
  if (reading_ && !queue_.empty() && queue_.back() == reading_) queue_.pop_back();
  reading_.reset();
  rstate_ = ReadState::kStopped;
  for (const auto& ex : queue_) {
    std::lock_guard lock(ex->mu);
    if (!ex->ready) {
      ex->response = HttpResponse::Error(Unavailable("server is stopping"));
      ex->ready = true;
    }
  }
  if (!queue_.empty()) queue_.back()->keep_alive = false;
  if (wstate_ == WriteState::kStream) {
    FinishStream();
  }
  if (queue_.empty()) {
    Close();
    return;
  }
  Drive();
}

bool Connection::IdleSince(Clock::time_point t) {
  if (closed_) return false;
  if (lingering_) return Clock::now() >= linger_until_;
  // A body owed by the client (not one waiting for our 100 Continue).
  if ((rstate_ == ReadState::kBody || rstate_ == ReadState::kDiscard) && reading_ &&
      !reading_->continue_pending && last_active_ < t)
    return true;
  if (wstate_ != WriteState::kWaiting) {
    // Only a client that stopped reading. A parked stream waits for news,
    // and one just woken has not been pumped yet: neither is idle.
    return !writable_ && last_active_ < t;
  }
  if (!queue_.empty()) return false;  // a handler's answer is awaited
  return last_active_ < t;
}

void Connection::ReleaseBuffers() {
  if (closed_) return;
  in_.Release();
  out_.Release();
}

void Connection::Drive() {
  for (int turn = 0; !closed_; ++turn) {
    if (turn == kTurnsPerDrive) {
      // A client pipelining without pause must not hold the loop: the
      // loop's other connections go first, then this one carries on.
      mailbox_->Post(id_, Mailbox::Kind::kAnswer);
      return;
    }
    bool wrote = AdvanceWriter();
    if (closed_) return;
    bool read = AdvanceReader();
    if (!wrote && !read) return;
  }
}

// ---- reading ----------------------------------------------------------------

bool Connection::AdvanceReader() {
  if (rstate_ == ReadState::kStopped) {
    // No more requests, but the client's end must still be seen (a watch
    // asked with Connection: close; a lingering close): read and drop.
    in_.Consume(in_.size());
    while (ReadMore()) in_.Consume(in_.size());
    return false;
  }
  // Read ahead at most kMaxInFlight requests, and bodies up to a budget;
  // requests after a stream wait for it to end, and reading also notices a
  // stream's client leaving (end of input).
  if (queue_.size() >= kMaxInFlight) return false;
  if (!queue_.empty() && queued_body_bytes_ >= kMaxQueuedBodies) return false;
  switch (rstate_) {
    case ReadState::kHead: return ParseHead() || ReadMore();
    case ReadState::kBody:
    case ReadState::kDiscard: return ParseBody() || ReadMore();
    case ReadState::kStopped: break;
  }
  return false;
}

bool Connection::ReadMore() {
  if (!readable_) return false;
  // Large bodies (image uploads are megabytes) in large reads.
  size_t want = kReadSize;
  if (rstate_ == ReadState::kBody && !body_chunked_ && body_left_ > kReadSize)
    want = static_cast<size_t>(std::min<uint64_t>(body_left_, kMaxBodyRead));
  char* p = in_.Prepare(want);
  ssize_t n = ::recv(fd_.get(), p, want, 0);
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
  if (rstate_ == ReadState::kBody) {
    // Half a request: it will never be whole.
    if (!queue_.empty() && queue_.back() == reading_) queue_.pop_back();
    reading_.reset();
  }
  rstate_ = ReadState::kStopped;
  // A stream's client has gone; otherwise what was asked is still answered
  // (a client may shut its sending side and wait for the answers).
  if (wstate_ == WriteState::kStream || (queue_.empty() && wstate_ == WriteState::kWaiting))
    Close();
}

bool Connection::ParseHead() {
  if (in_.empty()) return false;
  // Parse only once a blank line has arrived (or the head is too long to
  // ever be accepted): a head sent in many small pieces is not parsed again
  // for every piece.
  std::string_view text = in_.view();
  size_t from = head_scanned_ > 3 ? head_scanned_ - 3 : 0;
  if (text.size() <= kMaxRequestHead && text.find("\n\r\n", from) == std::string_view::npos &&
      text.find("\n\n", from) == std::string_view::npos) {
    head_scanned_ = text.size();
    return false;
  }
  RequestHead head;
  HeadParse p = ParseRequestHead(in_.view(), &head);
  switch (p.result) {
    case HeadParse::Result::kNeedMore: head_scanned_ = in_.size(); return false;
    case HeadParse::Result::kError: Refuse(p.status, p.error); return true;
    case HeadParse::Result::kDone:
      in_.Consume(p.consumed);
      head_scanned_ = 0;
      BeginRequest(head);
      return true;
  }
  return false;
}

void Connection::BeginRequest(RequestHead& head) {
  auto ex = std::make_shared<Exchange>();
  ex->mailbox = mailbox_;
  ex->conn = id_;
  ex->start = Clock::now();
  HttpRequest& req = ex->req;
  req.method = std::move(head.method);
  req.headers = std::move(head.headers);
  req.remote = remote_;
  ex->keep_alive = head.keep_alive && !server_->stopping.load(std::memory_order_relaxed);
  ex->head_only = req.method == "HEAD";
  ex->chunked_out = head.minor_version >= 1;

  std::string error;
  if (!DecodeTarget(head.target, &req.path, &req.query, &error)) {
    Refuse(400, error);
    return;
  }
  int early_status = 0;
  ex->route = server_->router->Find(req, &early_status);
  body_chunked_ = head.chunked;
  body_left_ = head.content_length;
  bool has_body = body_chunked_ || body_left_ > 0;
  max_body_ = ex->route ? ex->route->options.max_body : 0;
  if (ex->route && body_left_ > max_body_) early_status = 413;
  queue_.push_back(ex);
  if (!ex->keep_alive) rstate_ = ReadState::kStopped;

  if (early_status != 0) {
    ex->response = EarlyError(early_status, req, max_body_);
    ex->ready = true;
    if (!has_body) return;
    // A client waiting for 100-continue sends nothing more; a chunked or
    // large body is not worth reading to keep the connection.
    if (head.expect_continue || body_chunked_ || body_left_ > kMaxDiscard) {
      ex->keep_alive = false;
      rstate_ = ReadState::kStopped;
      return;
    }
    reading_ = ex;
    rstate_ = ReadState::kDiscard;  // then the next request, or none if this one closes
    return;
  }
  if (has_body) {
    ex->continue_pending = head.expect_continue;
    // Reserved as far as kBodyTrust: the length is the client's word, and
    // the handler has not checked the token yet.
    if (!body_chunked_)
      req.body.reserve(static_cast<size_t>(std::min<uint64_t>(body_left_, kBodyTrust)));
    chunked_ = ChunkedDecoder{};
    reading_ = ex;
    rstate_ = ReadState::kBody;
    return;
  }
  Dispatch(ex);
}

bool Connection::ParseBody() {
  if (in_.empty()) return false;
  std::string_view avail = in_.view();
  std::shared_ptr<Exchange> ex = reading_;
  bool keep = rstate_ == ReadState::kBody;  // kDiscard: the body is dropped
  if (keep && body_chunked_) {
    size_t used = 0;
    ChunkedDecoder::Result r = chunked_.Feed(avail, &ex->req.body, max_body_, &used);
    in_.Consume(used);
    switch (r) {
      case ChunkedDecoder::Result::kNeedMore: return used > 0;
      case ChunkedDecoder::Result::kDone:
        reading_.reset();
        rstate_ = ex->keep_alive ? ReadState::kHead : ReadState::kStopped;
        Dispatch(ex);
        return true;
      case ChunkedDecoder::Result::kError: {
        // Where the next request would start is unknown: answer, close.
        ex->req.body.clear();
        // (Not dispatched yet: no Responder can race with this.)
        ex->response = HttpResponse::Error(
            chunked_.too_large() ? TooLarge(chunked_.error()) : InvalidArgument(chunked_.error()));
        ex->ready = true;
        ex->keep_alive = false;
        reading_.reset();
        rstate_ = ReadState::kStopped;
        return true;
      }
    }
    return false;
  }
  size_t n = static_cast<size_t>(std::min<uint64_t>(body_left_, avail.size()));
  if (keep) {
    std::string& body = ex->req.body;
    // Past its first MiB (the client has shown it sends), the body grows
    // towards its declared length in steps of up to kBodyStep: grown by
    // doubling, an 8 MiB upload was copied and page-faulted twice over.
    // Not to its whole length at once: the token is checked after the
    // body, and a client declaring 512 MiB would have that reserved.
    if (body.size() + n > body.capacity() && body.size() >= kBodyTrust)
      body.reserve(static_cast<size_t>(
          body.size() + std::min<uint64_t>(body_left_, std::max(body.size(), kBodyStep))));
    body.append(avail.data(), n);
  }
  in_.Consume(n);
  body_left_ -= n;
  if (body_left_ > 0) return n > 0;
  rstate_ = ex->keep_alive ? ReadState::kHead : ReadState::kStopped;
  reading_.reset();
  if (keep) Dispatch(ex);
  return true;
}

void Connection::Dispatch(const std::shared_ptr<Exchange>& ex) {
  ex->body_bytes = ex->req.body.size();
  queued_body_bytes_ += ex->body_bytes;
  {
    std::lock_guard lock(ex->mu);
    ex->in_dispatch = true;
  }
  std::weak_ptr<Exchange> weak = ex;
  server_->router->Dispatch(*ex->route, ex->req, Responder([weak](HttpResponse r) {
    if (auto e = weak.lock())
      e->Complete(std::move(r));
    else
      DiscardResponse(r);  // the connection is gone
  }));
  std::lock_guard lock(ex->mu);
  ex->in_dispatch = false;
  if (!ex->ready) {
    // Answered later, through the mailbox: counted as waiting until then.
    ex->counted_pending = true;
    server_->pending.fetch_add(1, std::memory_order_relaxed);
  }
}

void Connection::Refuse(int status, const std::string& error) {
  log::Debug("http", "refused a malformed request",
             {{"remote", remote_}, {"status", status}, {"error", error}});
  HttpResponse r = HttpResponse::Error(status == 431 ? TooLarge(error) : InvalidArgument(error));
  r.status = status;
  auto ex = std::make_shared<Exchange>();
  ex->start = Clock::now();
  ex->req.remote = remote_;
  ex->keep_alive = false;  // where the next request starts is unknown
  ex->response = std::move(r);
  ex->ready = true;
  queue_.push_back(std::move(ex));
  rstate_ = ReadState::kStopped;
}

// ---- writing ----------------------------------------------------------------

bool Connection::AdvanceWriter() {
  bool progress = false;
  for (;;) {
    if (CanJoinNext()) {
      // The answer is wholly in out_ and the next one is ready: both go out
      // in one send (a group commit answers a pipelining client's requests
      // together).
      FinishAnswer();
      progress = true;
      continue;
    }
    // The next answer joins what is in out_ when it is ready: flush later.
    bool joining = wstate_ == WriteState::kWaiting && !out_.empty() && OnlySmallOutput() &&
                   !queue_.empty() && AnswerReady(*queue_.front());
    if (!joining && !Flush()) return progress;
    switch (wstate_) {
      case WriteState::kSending:
        FinishAnswer();
        if (closed_) return true;
        progress = true;
        continue;
      case WriteState::kStream:
        if (!PumpStream()) return progress;
        progress = true;
        continue;
      case WriteState::kWaiting: break;
    }
    if (queue_.empty()) return progress;
    Exchange& ex = *queue_.front();
    if (ex.continue_pending) {
      out_.Append("HTTP/1.1 100 Continue\r\n\r\n");
      ex.continue_pending = false;
      progress = true;
      continue;
    }
    HttpResponse r;
    {
      std::lock_guard lock(ex.mu);
      if (!ex.ready || ex.in_dispatch) return progress;
      r = std::move(ex.response);
      ex.response.file_fd = -1;  // r owns it now
    }
    if (ex.counted_pending) {
      ex.counted_pending = false;
      server_->pending.fetch_sub(1, std::memory_order_relaxed);
    }
    if (server_->opts.on_response) {
      double secs = std::chrono::duration<double>(Clock::now() - ex.start).count();
      server_->opts.on_response(ex.route, ex.req, r.status, secs);
    }
    Respond(ex, std::move(r));
    progress = true;
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
      // A file region follows (a stream's chunk head before its object):
      // MSG_MORE keeps the few head bytes from going out as a segment of
      // their own.
      n = ::sendmsg(fd_.get(), &msg, MSG_NOSIGNAL | (file_left_ > 0 ? MSG_MORE : 0));
      if (n > 0) {
        size_t k = static_cast<size_t>(n);
        size_t from_head = std::min(k, head.size());
        out_.Consume(from_head);
        body_pos_ += k - from_head;
      }
    } else {
      off_t off = static_cast<off_t>(file_offset_);
      size_t want = static_cast<size_t>(std::min<uint64_t>(file_left_, 1 << 30));
      n = ::sendfile(fd_.get(), file_fd_, &off, want);
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
  file_fd_ = -1;
  return true;
}

void Connection::Respond(Exchange& ex, HttpResponse r) {
  bool no_body = (r.status >= 100 && r.status < 200) || r.status == 204 || r.status == 304;
  bool stream = r.stream != nullptr && !no_body && !ex.head_only;
  if (r.stream && !stream) r.stream->Closed();  // never started
  // HTTP/1.0: a streamed body ends with the connection.
  if (stream && !ex.chunked_out) ex.keep_alive = false;
  // Stopping: the connection ends after the last answer read, not before.
  if (server_->stopping.load(std::memory_order_relaxed) && queue_.size() == 1)
    ex.keep_alive = false;
  bool keep_alive = ex.keep_alive;

  ResponseHead head{.status = r.status,
                    .content_type = r.content_type,
                    .headers = &r.headers,
                    .keep_alive = keep_alive};
  if (no_body) {
    head.framing = ResponseHead::Framing::kNone;
  } else if (r.stream) {
    head.framing = ex.chunked_out ? ResponseHead::Framing::kChunked : ResponseHead::Framing::kClose;
  } else {
    head.framing = ResponseHead::Framing::kLength;
    head.content_length = r.file_fd >= 0 ? r.file_size : r.body.size();
  }
  RenderResponseHead(head, &out_);

  if (stream) {
    stream_ = std::move(r.stream);
    parking_ = std::make_shared<StreamParking>(mailbox_, id_);
    stream_piece_ = kFirstStreamPiece;
    stream_chunked_ = ex.chunked_out;
    stream_crlf_ = false;
    server_->streams.fetch_add(1, std::memory_order_relaxed);
    wstate_ = WriteState::kStream;
    return;
  }
  UniqueFd file(r.file_fd);
  if (!no_body && !ex.head_only) {
    if (file.valid()) {
      file_ = std::move(file);
      file_fd_ = file_.get();
      file_offset_ = r.file_offset;
      file_left_ = r.file_size;
    } else if (r.body.size() <= kJoinBody) {
      out_.Append(r.body);  // small: joins the head, and maybe the next answers
    } else {
      body_ = std::move(r.body);
      body_pos_ = 0;
    }
  }
  wstate_ = WriteState::kSending;
}

void Connection::DropQueue() {
  for (const auto& ex : queue_)
    if (ex->counted_pending) server_->pending.fetch_sub(1, std::memory_order_relaxed);
  queue_.clear();
  reading_.reset();
}

void Connection::Linger() {
  // Everything after this answer is dropped; the client may still be
  // sending (a refused body): closing with unread input would make the
  // kernel reset the connection, and the client could lose the answer.
  DropQueue();
  rstate_ = ReadState::kStopped;
  ::shutdown(fd_.get(), SHUT_WR);
  lingering_ = true;
  linger_until_ = Clock::now() + kLinger;
}

bool Connection::OnlySmallOutput() const {
  return body_pos_ >= body_.size() && file_left_ == 0 && out_.size() < kJoinOutput;
}

bool Connection::CanJoinNext() {
  return wstate_ == WriteState::kSending && OnlySmallOutput() && queue_.size() >= 2 &&
         queue_.front()->keep_alive && AnswerReady(*queue_[1]);
}

void Connection::FinishAnswer() {
  bool keep_alive = queue_.front()->keep_alive;
  queued_body_bytes_ -= std::min(queued_body_bytes_, queue_.front()->body_bytes);
  queue_.pop_front();
  wstate_ = WriteState::kWaiting;
  if (peer_closed_ && queue_.empty()) {
    Close();
  } else if (!keep_alive) {
    Linger();
  }
  // The buffers stay for the next request: freeing and allocating them per
  // request cost more than the request's parsing (glibc consolidates its
  // small free lists on every allocation of that size). The loop's sweep
  // gives them back once the connection is idle.
}

bool Connection::PumpStream() {
  if (closed_ || wstate_ != WriteState::kStream) return false;
  if (!writable_) return false;
  if (parking_->parked()) return false;
  if (stream_crlf_) {  // the region sent before this call was a chunk
    out_.Append("\r\n");
    stream_crlf_ = false;
  }
  if (server_->stopping.load(std::memory_order_relaxed)) {
    if (queue_.size() == 1) queue_.front()->keep_alive = false;
    FinishStream();
    return true;
  }
  BodyStream::FileRegion region;
  if (stream_->File(&region)) {
    if (region.size == 0) return true;  // nothing to send: an empty chunk would end the body
    if (stream_chunked_) out_.Append(fmt::format("{:x}\r\n", region.size));
    file_fd_ = region.fd;
    file_offset_ = region.offset;
    file_left_ = region.size;
    stream_crlf_ = stream_chunked_;
    return true;
  }
  size_t prefix = stream_chunked_ ? kChunkPrefix : 0;
  char* p = out_.Prepare(prefix + stream_piece_ + 2);
  ssize_t n = stream_->Read(p + prefix, stream_piece_, *parking_);
  if (n > 0) {
    size_t len = static_cast<size_t>(n);
    if (len == stream_piece_) stream_piece_ = std::min(2 * stream_piece_, kMaxStreamPiece);
    if (stream_chunked_) {
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
    FinishStream();
    return true;
  }
  Close();  // kError: the body cannot be completed; the client sees it cut
  return false;
}

void Connection::FinishStream() {
  if (stream_chunked_) out_.Append("0\r\n\r\n");
  EndStream();
  wstate_ = WriteState::kSending;
}

void Connection::EndStream() {
  if (!stream_) return;
  parking_->Detach();
  std::shared_ptr<BodyStream> stream = std::move(stream_);
  server_->streams.fetch_sub(1, std::memory_order_relaxed);
  // Closed() first: a stream may Unpark until it returns (BodyStream's
  // contract), so the parking must outlive it.
  stream->Closed();
  parking_.reset();
}

}  // namespace kiln::http
