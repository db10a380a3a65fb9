#pragma once
// One client connection of kiln's HTTP server, driven by its event loop:
// reads requests (keep-alive, pipelined one after another), hands each to
// its route's handler, and writes the answer (a buffer, a file region with
// sendfile, or a streamed body in chunks). Owned by one loop thread; other
// threads reach it only through the loop's Mailbox.

#include <sys/uio.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>

#include "common/byte_buffer.h"
#include "common/file_util.h"
#include "server/http/chunked_body.h"
#include "server/http/http_server.h"
#include "server/http/mailbox.h"
#include "server/http/request_head.h"
#include "server/http/router.h"

namespace kiln::http {

// What every connection of one server shares.
struct ServerShared {
  const Router* router = nullptr;
  HttpServerOptions opts;
  std::atomic<bool> stopping{false};
  std::atomic<size_t> connections{0};
  std::atomic<size_t> pending{0};  // requests waiting for their handler
  std::atomic<size_t> streams{0};  // streamed bodies open
};

// One request and its answer, shared with the Responder that completes it
// from any thread.
struct Exchange {
  std::shared_ptr<Mailbox> mailbox;
  uint64_t conn = 0;
  HttpRequest req;
  const Router::Route* route = nullptr;
  std::chrono::steady_clock::time_point start;

  // How the answer goes out (the loop's thread only).
  bool head_only = false;         // a HEAD request: no body
  bool chunked_out = true;        // HTTP/1.1: a streamed body in chunks
  bool keep_alive = true;         // false: the connection ends after this answer
  bool continue_pending = false;  // owes "100 Continue" once it is the oldest
  bool counted_pending = false;   // counted in ServerShared::pending
  size_t body_bytes = 0;          // the request body's size, for the read-ahead budget

  std::mutex mu;
  bool in_dispatch = false;  // the handler has not returned yet: no post needed
  bool ready = false;
  HttpResponse response;

  void Complete(HttpResponse r);
  // An answer never sent still owns its file and its stream.
  ~Exchange();
};

// Closes the file and ends the stream of an answer that will not be sent.
void DiscardResponse(HttpResponse& r);

// BodyStream::Parking for a connection's stream.
class StreamParking : public BodyStream::Parking {
 public:
  StreamParking(std::shared_ptr<Mailbox> mailbox, uint64_t conn)
      : mailbox_(std::move(mailbox)), conn_(conn) {}
  void Park() override;
  void Unpark() override;
  bool parked();
  void Detach();  // the connection is done with the stream: no more posts

 private:
  std::shared_ptr<Mailbox> mailbox_;
  uint64_t conn_;
  std::mutex mu_;
  bool parked_ = false;
  bool detached_ = false;
};

// Requests are read, and handed to their handlers, while earlier ones on
// the same connection still wait for their answers (HTTP/1.1 pipelining):
// a client with 16 updates in flight on one connection gets them group-
// committed together, as a ZooKeeper session does. Answers go out in the
// order the requests came.
class Connection {
 public:
  using Clock = std::chrono::steady_clock;

  // Requests read ahead of their answers, per connection.
  static constexpr size_t kMaxInFlight = 64;

  Connection(uint64_t id, UniqueFd fd, std::string remote, ServerShared* server,
             std::shared_ptr<Mailbox> mailbox);
  ~Connection();

  // The loop's calls, on its thread.
  void OnEvents(uint32_t epoll_events);
  void OnAnswer();  // Mailbox::Kind::kAnswer
  void OnWake();    // Mailbox::Kind::kWake
  void OnStop();    // answer what is in hand, end streams, then close

  bool closed() const { return closed_; }
  int fd() const { return fd_.get(); }
  // Quiet since t while the client owes the next move: a request (or the
  // rest of one), or reading what was sent. Never while a handler or a
  // stream's news is awaited.
  bool IdleSince(Clock::time_point t);
  void Close();
  // Gives back the memory of empty input and output buffers (the loop's
  // sweep, once a second: idle keep-alive connections, parked streams).
  void ReleaseBuffers();

 private:
  enum class ReadState {
    kHead,     // reading a request head
    kBody,     // reading its body
    kDiscard,  // reading a body that is refused, to answer it on a clean connection
    kStopped,  // no more requests: the last one said close, or the client did
  };
  enum class WriteState {
    kWaiting,  // for the oldest request's answer (or for a request)
    kSending,  // a whole answer
    kStream,   // a streamed body
  };

  void Drive();
  bool AdvanceReader();  // false: nothing to do until an event
  bool AdvanceWriter();
  bool ReadMore();
  void OnPeerClosed();
  bool Flush();  // false: output still pending (or closed)
  bool ParseHead();
  bool ParseBody();
  void BeginRequest(RequestHead& head);
  void Dispatch(const std::shared_ptr<Exchange>& ex);
  void Refuse(int status, const std::string& error);  // malformed: answer, close
  void Respond(Exchange& ex, HttpResponse r);         // the oldest answer's head and body
  void FinishAnswer();                                // it is out: the next, or close
  bool CanJoinNext();            // the answer in out_ may be followed at once by the next
  bool OnlySmallOutput() const;  // out_ holds all there is to send, and little
  void Linger();
  void DropQueue();  // the requests read are given up (their answers unsent)       // the last
                     // answer is out: half-close, read what still comes, then close
  bool PumpStream();
  void FinishStream();  // the last chunk queued, the stream let go
  void EndStream();

  uint64_t id_;
  UniqueFd fd_;
  std::string remote_;
  ServerShared* server_;
  std::shared_ptr<Mailbox> mailbox_;
  bool closed_ = false;
  bool readable_ = false;
  bool writable_ = true;
  bool peer_closed_ = false;  // the client shut its side: answer, then close
  bool lingering_ = false;    // our side is shut; waiting for the client's end
  Clock::time_point linger_until_;
  size_t head_scanned_ = 0;       // input searched for a head's end without finding one
  size_t queued_body_bytes_ = 0;  // bodies of requests read ahead
  Clock::time_point last_active_;

  // Reading.
  ReadState rstate_ = ReadState::kHead;
  ByteBuffer in_;                      // received, not yet parsed
  std::shared_ptr<Exchange> reading_;  // whose body is arriving
  bool body_chunked_ = false;
  uint64_t body_left_ = 0;
  size_t max_body_ = 0;
  ChunkedDecoder chunked_;

  // Requests read, oldest first; the front's answer is the one going out.
  std::deque<std::shared_ptr<Exchange>> queue_;

  // Writing: out_ (heads, stream chunks), then body_ from body_pos_, then
  // a file region.
  WriteState wstate_ = WriteState::kWaiting;
  ByteBuffer out_;
  std::string body_;
  size_t body_pos_ = 0;
  UniqueFd file_;     // a file response's, owned
  int file_fd_ = -1;  // what is being sent: file_, or a stream's region (the stream's)
  uint64_t file_offset_ = 0;
  uint64_t file_left_ = 0;
  std::shared_ptr<BodyStream> stream_;
  std::shared_ptr<StreamParking> parking_;
  size_t stream_piece_ = 0;  // how much the next Read may return
  bool stream_chunked_ = true;
  bool stream_crlf_ = false;  // a region's chunk still needs its closing CRLF
};

}  // namespace kiln::http
