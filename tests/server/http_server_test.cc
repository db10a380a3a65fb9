#include "server/http/http_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "common/file_util.h"
#include "common/http_client.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"

using namespace kiln;
using namespace kiln::http;

namespace {

std::string Url(const HttpServer& s) {
  return "http://127.0.0.1:" + std::to_string(s.address().port);
}

// A stream that sends queued pieces and parks while the queue is empty.
class QueueStream : public BodyStream {
 public:
  void Push(std::string s, bool end = false) {
    std::lock_guard lock(mu_);
    q_.push_back(std::move(s));
    end_ |= end;
    if (parked_) {
      parked_ = false;
      parking_->Unpark();
    }
  }
  ssize_t Read(char* buf, size_t max, Parking& parking) override {
    std::lock_guard lock(mu_);
    if (q_.empty()) {
      if (end_) return kEnd;
      parked_ = true;
      parking_ = &parking;
      parking.Park();
      return kWouldBlock;
    }
    std::string s = std::move(q_.front());
    q_.pop_front();
    REQUIRE(s.size() <= max);
    std::memcpy(buf, s.data(), s.size());
    return static_cast<ssize_t>(s.size());
  }
  void Closed() override {
    std::lock_guard lock(mu_);
    parking_ = nullptr;  // BodyStream's contract: no Unpark after Closed
    parked_ = false;
    closed = true;
  }
  std::atomic<bool> closed{false};

 private:
  std::mutex mu_;
  std::deque<std::string> q_;
  bool end_ = false;
  bool parked_ = false;
  Parking* parking_ = nullptr;
};

// A route that answers with the given stream.
void AddStream(Router& router, const std::string& path, std::shared_ptr<QueueStream> stream,
               std::string content_type = "application/octet-stream") {
  router.AddSync("GET", path,
                 [stream, content_type](HttpRequest&) {
                   HttpResponse r;
                   r.content_type = content_type;
                   r.stream = stream;
                   return r;
                 },
                 {.access = Access::kPublic});
}

}  // namespace

TEST_CASE("serves sync and async handlers on an ephemeral port") {
  Router router(nullptr);
  router.AddSync("GET", "/hello",
                 [](HttpRequest& r) { return HttpResponse::Text("hi " + r.Query("who")); },
                 {.access = Access::kPublic});
  router.Add("POST", "/later",
             [](HttpRequest& r, Responder res) {
               std::string body = r.body;
               // Answer from another thread, after the handler returned.
               std::thread([res, body] {
                 std::this_thread::sleep_for(std::chrono::milliseconds(50));
                 res.SendJson({{"echo", body}});
               }).detach();
             },
             {.access = Access::kPublic, .max_body = 16});

  auto server = HttpServer::Start({.listen = "127.0.0.1:0", .threads = 2}, &router);
  REQUIRE(server.ok());
  REQUIRE((*server)->address().port != 0);
  HttpClient c(Url(**server), "");

  auto hello = c.Do("GET", "/hello?who=world");
  REQUIRE(hello.ok());
  CHECK(hello->status == 200);
  CHECK(hello->body == "hi world");

  for (int i = 0; i < 3; ++i) {  // keep-alive across async answers
    auto later = c.Do("POST", "/later", "payload", {.content_type = "text/plain"});
    REQUIRE(later.ok());
    CHECK(later->status == 200);
    CHECK(later->body == "{\"echo\":\"payload\"}\n");
  }

  auto big = c.Do("POST", "/later", std::string(100, 'x'));
  REQUIRE(big.ok());
  CHECK(big->status == 413);
  CHECK(big->body.find("too_large") != std::string::npos);

  auto missing = c.Do("GET", "/nope");
  REQUIRE(missing.ok());
  CHECK(missing->status == 404);
  CHECK(missing->body.find("no such API path: /nope") != std::string::npos);
  auto wrong = c.Do("DELETE", "/hello");
  REQUIRE(wrong.ok());
  CHECK(wrong->status == 405);
}

TEST_CASE("streamed bodies park while idle and resume on new data") {
  Router router(nullptr);
  auto stream = std::make_shared<QueueStream>();
  AddStream(router, "/stream", stream, "text/event-stream");
  auto server = HttpServer::Start({.listen = "127.0.0.1:0", .threads = 1}, &router);
  REQUIRE(server.ok());

  std::thread producer([stream] {
    for (int i = 0; i < 5; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(30));
      stream->Push("event " + std::to_string(i) + "\n", i == 4);
    }
  });
  HttpClient c(Url(**server), "");
  std::string got;
  auto r = c.Stream("/stream", [&](std::string_view d) {
    got.append(d);
    return true;
  });
  producer.join();
  REQUIRE(r.ok());
  CHECK(r->status == 200);
  CHECK(got == "event 0\nevent 1\nevent 2\nevent 3\nevent 4\n");
  CHECK(kiln::test::WaitUntil([&] { return stream->closed.load(); }));
}

TEST_CASE("files go out whole, and ranges of them") {
  kiln::test::TempDir t;
  std::string content(300000, 'k');
  content += "end";
  kiln::test::WriteTestFile(t.Sub("obj"), content);
  Router router(nullptr);
  router.AddSync("GET", "/file",
                 [&](HttpRequest& r) {
                   int fd = ::open(t.Sub("obj").c_str(), O_RDONLY | O_CLOEXEC);
                   uint64_t off = r.HasQuery("off") ? 300000 : 0;
                   return HttpResponse::File(fd, off, content.size() - off,
                                             "application/octet-stream");
                 },
                 {.access = Access::kPublic});
  auto server = HttpServer::Start({.listen = "127.0.0.1:0"}, &router);
  REQUIRE(server.ok());
  HttpClient c(Url(**server), "");
  auto whole = c.Do("GET", "/file");
  REQUIRE(whole.ok());
  CHECK(whole->body == content);
  auto tail = c.Do("GET", "/file?off=1");
  REQUIRE(tail.ok());
  CHECK(tail->body == "end");
}

TEST_CASE("stop answers requests still waiting with 503 and ends parked streams") {
  Router router(nullptr);
  auto stream = std::make_shared<QueueStream>();
  router.Add("GET", "/never", [](HttpRequest&, Responder) {}, {.access = Access::kPublic});
  AddStream(router, "/stream", stream);
  auto server = HttpServer::Start({.listen = "127.0.0.1:0"}, &router);
  REQUIRE(server.ok());
  std::string url = Url(**server);

  Result<HttpReply> pending = Status(Code::kInternal, "unset");
  std::thread waiter([&] {
    HttpClient c(url, "");
    pending = c.Do("GET", "/never");
  });
  Result<HttpReply> streamed = Status(Code::kInternal, "unset");
  std::thread reader([&] {
    HttpClient c(url, "");
    streamed = c.Stream("/stream", [](std::string_view) { return true; });
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  (*server)->Stop();
  waiter.join();
  reader.join();
  REQUIRE(pending.ok());
  CHECK(pending->status == 503);
  CHECK(stream->closed);
}

TEST_CASE("a busy port is a clear error") {
  Router router(nullptr);
  auto first = HttpServer::Start({.listen = "127.0.0.1:0"}, &router);
  REQUIRE(first.ok());
  std::string addr = "127.0.0.1:" + std::to_string((*first)->address().port);
  auto second = HttpServer::Start({.listen = addr}, &router);
  REQUIRE_FALSE(second.ok());
  CHECK(second.status().code() == Code::kUnavailable);
  CHECK(second.status().message() == "listen " + addr + ": Address already in use");
}

TEST_CASE("every asynchronous answer arrives, however it races with the suspend") {
  // Handlers answer at every possible moment relative to the server's
  // suspend and resume of the connection: before they return, from another
  // thread at once (racing with the suspend), or a little later (after it),
  // many times over on many keep-alive connections. A lost answer leaves
  // its client waiting: the client's timeout is a hang detector, far above
  // any answer time.
  Router router(nullptr);
  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::pair<Responder, std::string>> queue;
  bool done = false;
  std::atomic<uint64_t> seq{0};
  router.Add("POST", "/race",
             [&](HttpRequest& r, Responder res) {
               uint64_t n = seq.fetch_add(1);
               if (n % 3 == 0) return res.Send(HttpResponse::Text(r.body));  // before returning
               {
                 std::lock_guard lock(mu);
                 queue.emplace_back(res, r.body);
               }
               cv.notify_one();
             },
             {.access = Access::kPublic});
  // Two completer threads: one answers at once, one after a short nap.
  std::vector<std::thread> completers;
  for (int t = 0; t < 2; ++t)
    completers.emplace_back([&, t] {
      std::unique_lock lock(mu);
      for (;;) {
        cv.wait(lock, [&] { return done || !queue.empty(); });
        if (queue.empty()) return;
        auto [res, body] = std::move(queue.front());
        queue.pop_front();
        lock.unlock();
        if (t == 1) std::this_thread::sleep_for(std::chrono::microseconds(body.size() % 200));
        res.Send(HttpResponse::Text(body));
        lock.lock();
      }
    });
  auto server = HttpServer::Start({.listen = "127.0.0.1:0", .threads = 2}, &router);
  REQUIRE(server.ok());
  const std::string url = Url(**server);

  constexpr int kClients = 32;
  constexpr int kRequests = 60;
  std::atomic<int> answered{0}, wrong{0}, failed{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c)
    clients.emplace_back([&, c] {
      HttpClient http(url, "");
      for (int i = 0; i < kRequests; ++i) {
        std::string body = std::to_string(c) + "/" + std::to_string(i) + std::string(i % 7, '.');
        auto r = http.Do("POST", "/race", body,
                         {.content_type = "text/plain", .timeout = std::chrono::seconds(60)});
        if (!r.ok()) {
          ++failed;
          return;
        }
        (r->status == 200 && r->body == body ? answered : wrong)++;
      }
    });
  for (auto& t : clients) t.join();
  {
    std::lock_guard lock(mu);
    done = true;
  }
  cv.notify_all();
  for (auto& t : completers) t.join();
  CHECK(failed == 0);
  CHECK(wrong == 0);
  CHECK(answered == kClients * kRequests);
  CHECK((*server)->load().pending == 0);
}

namespace {

// A plain socket to the server, for what HttpClient never sends: malformed
// and pipelined requests, HTTP/1.0, half-sent heads.
class RawConn {
 public:
  explicit RawConn(uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    timeval tv{.tv_sec = 30, .tv_usec = 0};  // a hang detector, not a timing
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  ~RawConn() { Close(); }
  int fd() const { return fd_; }
  void Close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  void Send(std::string_view s) {
    REQUIRE(::send(fd_, s.data(), s.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(s.size()));
  }
  // Reads until the received text holds `want` (returning everything up to
  // and including it) or the connection ends (returning what came).
  std::string ReadUntil(std::string_view want) {
    for (;;) {
      size_t at = got_.find(want);
      if (at != std::string::npos) {
        std::string out = got_.substr(0, at + want.size());
        got_.erase(0, at + want.size());
        return out;
      }
      if (!Fill()) {
        std::string out = std::move(got_);
        got_.clear();
        return out;
      }
    }
  }
  // Everything until the server closes the connection.
  std::string ReadToEnd() {
    while (Fill()) {
    }
    std::string out = std::move(got_);
    got_.clear();
    return out;
  }

 private:
  bool Fill() {
    char buf[4096];
    ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n <= 0) return false;
    got_.append(buf, static_cast<size_t>(n));
    return true;
  }
  int fd_ = -1;
  std::string got_;
};

void AddEcho(Router& router) {
  router.AddSync("GET", "/hello",
                 [](HttpRequest& r) { return HttpResponse::Text("hi " + r.Query("who")); },
                 {.access = Access::kPublic});
  router.AddSync("POST", "/echo",
                 [](HttpRequest& r) { return HttpResponse::Text("[" + r.body + "]"); },
                 {.access = Access::kPublic, .max_body = 64});
}

}  // namespace

TEST_CASE("malformed requests get a 4xx naming the fault, then the connection closes") {
  Router router(nullptr);
  AddEcho(router);
  auto server = HttpServer::Start({.listen = "127.0.0.1:0"}, &router);
  REQUIRE(server.ok());
  uint16_t port = (*server)->address().port;
  struct Case {
    std::string request;
    std::string status_line;
    std::string says;
  };
  const std::vector<Case> cases = {
      {"GARBAGE\r\n\r\n", "HTTP/1.1 400 Bad Request", "malformed request line"},
      {"GET /hello HTTP/3.0\r\n\r\n", "HTTP/1.1 505 ", "not supported"},
      {"GET /a%zz HTTP/1.1\r\n\r\n", "HTTP/1.1 400 ", "malformed %-escape in request path"},
      {"POST /echo HTTP/1.1\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n",
       "HTTP/1.1 400 ", "ambiguous"},
      {"GET / HTTP/1.1\r\nX: " + std::string(40000, 'x') + "\r\n\r\n", "HTTP/1.1 431 ",
       "request head larger than"},
      {"POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "HTTP/1.1 400 ",
       "malformed chunk size"},
  };
  for (const Case& c : cases) {
    INFO(c.request.substr(0, 80));
    RawConn conn(port);
    conn.Send(c.request);
    std::string reply = conn.ReadToEnd();  // ends: the server closed it
    CHECK(reply.rfind(c.status_line, 0) == 0);
    CHECK(reply.find("Connection: close\r\n") != std::string::npos);
    CHECK(reply.find(c.says) != std::string::npos);
  }
  // The server is still there for well-formed requests.
  HttpClient client(Url(**server), "");
  auto ok = client.Do("GET", "/hello?who=you");
  REQUIRE(ok.ok());
  CHECK(ok->body == "hi you");
}

TEST_CASE("pipelined requests are answered in order, HEAD without a body, on one connection") {
  Router router(nullptr);
  AddEcho(router);
  auto server = HttpServer::Start({.listen = "127.0.0.1:0"}, &router);
  REQUIRE(server.ok());
  RawConn conn((*server)->address().port);
  conn.Send(
      "GET /hello?who=1 HTTP/1.1\r\nHost: h\r\n\r\n"
      "HEAD /hello?who=22 HTTP/1.1\r\nHost: h\r\n\r\n"
      "POST /echo HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"
      "POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nde\r\n1;x=y\r\nf\r\n0\r\n\r\n"
      "GET /hello?who=last HTTP/1.1\r\nConnection: close\r\n\r\n");
  std::string all = conn.ReadToEnd();
  size_t a = all.find("hi 1");
  size_t b = all.find("Content-Length: 5\r\n", a);  // HEAD: the GET's length ...
  size_t c = all.find("[abc]", b);
  size_t d = all.find("[def]", c);
  size_t e = all.find("hi last", d);
  CHECK(a != std::string::npos);
  CHECK(b != std::string::npos);
  CHECK(c != std::string::npos);
  CHECK(d != std::string::npos);
  CHECK(e != std::string::npos);
  CHECK(all.find("hi 22") == std::string::npos);  // ... and no body
  CHECK(all.find("Connection: close\r\n") > d);   // only the last one closes
}

TEST_CASE("Expect: 100-continue gets its go-ahead, or the refusal before the body is sent") {
  Router router(nullptr);
  AddEcho(router);
  auto server = HttpServer::Start({.listen = "127.0.0.1:0"}, &router);
  REQUIRE(server.ok());
  RawConn conn((*server)->address().port);
  conn.Send("POST /echo HTTP/1.1\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n");
  CHECK(conn.ReadUntil("\r\n\r\n") == "HTTP/1.1 100 Continue\r\n\r\n");
  conn.Send("body");
  std::string reply = conn.ReadUntil("[body]");
  CHECK(reply.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);

  // Too large for the route: refused without waiting for the body.
  conn.Send("POST /echo HTTP/1.1\r\nContent-Length: 100\r\nExpect: 100-continue\r\n\r\n");
  std::string refused = conn.ReadToEnd();
  CHECK(refused.rfind("HTTP/1.1 413 ", 0) == 0);
  CHECK(refused.find("request body larger than 64 bytes") != std::string::npos);

  // Without Expect, a refused small body is read and dropped so the
  // connection goes on.
  RawConn again((*server)->address().port);
  again.Send("POST /echo HTTP/1.1\r\nContent-Length: 100\r\n\r\n" + std::string(100, 'x') +
             "GET /hello?who=next HTTP/1.1\r\n\r\n");
  CHECK(again.ReadUntil("request body larger than 64 bytes").rfind("HTTP/1.1 413 ", 0) == 0);
  CHECK(again.ReadUntil("hi next").find("HTTP/1.1 200 OK") != std::string::npos);
}

TEST_CASE(
    "streams: an HTTP/1.0 client gets the body unchunked, and a client that leaves is noticed") {
  Router router(nullptr);
  auto s10 = std::make_shared<QueueStream>();
  auto s11 = std::make_shared<QueueStream>();
  AddStream(router, "/s10", s10);
  AddStream(router, "/s11", s11);
  auto server = HttpServer::Start({.listen = "127.0.0.1:0"}, &router);
  REQUIRE(server.ok());

  RawConn old((*server)->address().port);
  old.Send("GET /s10 HTTP/1.0\r\n\r\n");
  s10->Push("one,");
  s10->Push("two", true);
  std::string reply = old.ReadToEnd();
  CHECK(reply.find("Transfer-Encoding") == std::string::npos);
  CHECK(reply.substr(reply.find("\r\n\r\n") + 4) == "one,two");

  RawConn leaver((*server)->address().port);
  leaver.Send("GET /s11 HTTP/1.1\r\n\r\n");
  s11->Push("first");
  CHECK(leaver.ReadUntil("first").find("Transfer-Encoding: chunked\r\n") != std::string::npos);
  REQUIRE(kiln::test::WaitUntil([&] { return (*server)->load().streams == 1; }));
  leaver.Close();  // the stream is parked: only the socket's end can tell
  CHECK(kiln::test::WaitUntil([&] { return s11->closed.load(); }));
  CHECK((*server)->load().streams == 0);
}

namespace {

// A stream of copied pieces and file regions, in order: File hands out the
// regions, and a Read that reaches one (the server copying it instead of
// sending the file) is recorded.
class RegionStream : public BodyStream {
 public:
  struct Piece {
    std::string bytes;
    int fd = -1;  // a region of this file instead
    uint64_t offset = 0, size = 0;
  };
  explicit RegionStream(std::vector<Piece> pieces) : pieces_(std::move(pieces)) {}
  ssize_t Read(char* buf, size_t max, Parking&) override {
    if (i_ == pieces_.size()) return kEnd;
    const Piece& p = pieces_[i_];
    if (p.fd >= 0) {
      read_region = true;
      return kError;
    }
    size_t n = std::min(max, p.bytes.size() - pos_);
    std::memcpy(buf, p.bytes.data() + pos_, n);
    pos_ += n;
    if (pos_ == p.bytes.size()) ++i_, pos_ = 0;
    return static_cast<ssize_t>(n);
  }
  bool File(FileRegion* region) override {
    if (i_ == pieces_.size() || pieces_[i_].fd < 0) return false;
    *region = {pieces_[i_].fd, pieces_[i_].offset, pieces_[i_].size};
    ++i_;
    return true;
  }
  std::atomic<bool> read_region{false};

 private:
  std::vector<Piece> pieces_;
  size_t i_ = 0, pos_ = 0;
};

}  // namespace

TEST_CASE("a stream's file regions go out with sendfile between its bytes, chunked or not") {
  kiln::test::TempDir t;
  std::string content;
  for (int i = 0; content.size() < 400000; ++i) content += fmt::format("line {}\n", i);
  kiln::test::WriteTestFile(t.Sub("obj"), content);
  UniqueFd fd(::open(t.Sub("obj").c_str(), O_RDONLY | O_CLOEXEC));
  REQUIRE(fd.valid());
  // Bytes, a large region, an empty one, bytes, two regions back to back
  // (the first from the file's start, the second from its middle), bytes.
  std::vector<RegionStream::Piece> pieces = {
      {"head:"}, {"", fd.get(), 7, 300000}, {"", fd.get(), 11, 0},
      {"|mid|"}, {"", fd.get(), 0, 5},      {"", fd.get(), 200000, 150000},
      {":tail"}};
  std::string want = "head:" + content.substr(7, 300000) + "|mid|" + content.substr(0, 5) +
                     content.substr(200000, 150000) + ":tail";
  std::vector<std::shared_ptr<RegionStream>> made;
  std::mutex mu;
  Router router(nullptr);
  router.AddSync("GET", "/regions",
                 [&](HttpRequest&) {
                   HttpResponse r;
                   r.content_type = "application/octet-stream";
                   std::lock_guard lock(mu);
                   r.stream = made.emplace_back(std::make_shared<RegionStream>(pieces));
                   return r;
                 },
                 {.access = Access::kPublic});
  auto server = HttpServer::Start({.listen = "127.0.0.1:0"}, &router);
  REQUIRE(server.ok());

  // HTTP/1.1: chunked (the client's decoder checks every chunk's framing),
  // twice on one connection, so each body ends where it should.
  HttpClient c(Url(**server), "");
  for (int i = 0; i < 2; ++i) {
    auto r = c.Do("GET", "/regions");
    REQUIRE(r.ok());
    CHECK(r->status == 200);
    CHECK(r->body == want);
  }
  // HTTP/1.0: unchunked, ended by the close.
  RawConn old((*server)->address().port);
  old.Send("GET /regions HTTP/1.0\r\n\r\n");
  std::string reply = old.ReadToEnd();
  CHECK(reply.find("Transfer-Encoding") == std::string::npos);
  CHECK(reply.substr(reply.find("\r\n\r\n") + 4) == want);

  std::lock_guard lock(mu);
  REQUIRE(made.size() == 3);
  for (const auto& s : made) CHECK_FALSE(s->read_region.load());
}

TEST_CASE("an idle connection is closed after the idle timeout, a parked stream is not") {
  Router router(nullptr);
  AddEcho(router);
  auto stream = std::make_shared<QueueStream>();
  AddStream(router, "/stream", stream);
  auto server = HttpServer::Start({.listen = "127.0.0.1:0", .idle_timeout_s = 1}, &router);
  REQUIRE(server.ok());
  RawConn watcher((*server)->address().port);
  watcher.Send("GET /stream HTTP/1.1\r\n\r\n");
  RawConn idle((*server)->address().port);
  idle.Send("GET /hello?who=idle HTTP/1.1\r\n\r\n");
  CHECK(idle.ReadUntil("hi idle").find("200 OK") != std::string::npos);
  CHECK(idle.ReadToEnd().empty());  // returns once the server closes it
  stream->Push("still here");
  CHECK(watcher.ReadUntil("still here").find("still here") != std::string::npos);
}

TEST_CASE("pipelined requests reach their handlers together, and answers keep their order") {
  // The first request's handler answers only once the third has reached
  // its own handler: a server that waited for each answer before reading
  // the next request would never let it (the 10 s wait is a hang detector).
  Router router(nullptr);
  std::mutex mu;
  std::condition_variable cv;
  std::set<std::string> seen;
  std::vector<std::thread> answerers;
  router.Add("GET", "/later",
             [&](HttpRequest& r, Responder res) {
               std::string id = r.Query("id");
               {
                 std::lock_guard lock(mu);
                 seen.insert(id);
               }
               cv.notify_all();
               std::string wait_for = r.Query("after");
               std::lock_guard lock(mu);
               answerers.emplace_back([&, res, id, wait_for] {
                 std::unique_lock l(mu);
                 bool met = wait_for.empty() || cv.wait_for(l, std::chrono::seconds(10), [&] {
                   return seen.count(wait_for) > 0;
                 });
                 l.unlock();
                 res.Send(HttpResponse::Text(met ? "answer " + id : "sequential " + id));
               });
             },
             {.access = Access::kPublic});
  auto server = HttpServer::Start({.listen = "127.0.0.1:0", .threads = 1}, &router);
  REQUIRE(server.ok());
  RawConn conn((*server)->address().port);
  conn.Send(
      "GET /later?id=1&after=3 HTTP/1.1\r\n\r\n"
      "GET /later?id=2 HTTP/1.1\r\n\r\n"
      "GET /later?id=3 HTTP/1.1\r\nConnection: close\r\n\r\n");
  std::string all = conn.ReadToEnd();
  size_t a = all.find("answer 1");
  size_t b = all.find("answer 2");
  size_t c = all.find("answer 3");
  CHECK(a != std::string::npos);
  CHECK(b != std::string::npos);
  CHECK(c != std::string::npos);
  CHECK(a < b);
  CHECK(b < c);
  std::vector<std::thread> done;
  {
    std::lock_guard lock(mu);
    done.swap(answerers);
  }
  for (auto& t : done) t.join();
}

TEST_CASE("connections beyond the limit are closed at once, the ones within it are served") {
  Router router(nullptr);
  AddEcho(router);
  auto server =
      HttpServer::Start({.listen = "127.0.0.1:0", .threads = 2, .connection_limit = 2}, &router);
  REQUIRE(server.ok());
  uint16_t port = (*server)->address().port;
  auto a = std::make_unique<RawConn>(port);
  auto b = std::make_unique<RawConn>(port);
  a->Send("GET /hello?who=a HTTP/1.1\r\n\r\n");
  b->Send("GET /hello?who=b HTTP/1.1\r\n\r\n");
  CHECK(a->ReadUntil("hi a").find("200 OK") != std::string::npos);
  CHECK(b->ReadUntil("hi b").find("200 OK") != std::string::npos);
  RawConn over(port);
  CHECK(over.ReadToEnd().empty());  // closed without a word
  a.reset();
  // Once one is gone, a new connection is served again.
  CHECK(kiln::test::WaitUntil([&] {
    RawConn c(port);
    c.Send("GET /hello?who=c HTTP/1.1\r\nConnection: close\r\n\r\n");
    return c.ReadToEnd().find("hi c") != std::string::npos;
  }));
}

TEST_CASE("a client that stops reading a stream is cut off after the idle timeout") {
  Router router(nullptr);
  auto stream = std::make_shared<QueueStream>();
  AddStream(router, "/stream", stream);
  auto server = HttpServer::Start({.listen = "127.0.0.1:0", .idle_timeout_s = 1}, &router);
  REQUIRE(server.ok());
  RawConn reader((*server)->address().port);
  reader.Send("GET /stream HTTP/1.1\r\n\r\n");
  // Far more than the socket buffers hold, and the client reads none of it.
  for (int i = 0; i < 5000; ++i) stream->Push(std::string(4000, 'x'));
  CHECK(kiln::test::WaitUntil([&] { return stream->closed.load(); }));
  CHECK((*server)->load().streams == 0);
}

TEST_CASE("fuzz: a live server survives damaged requests and still answers good ones") {
  Router router(nullptr);
  AddEcho(router);
  auto server = HttpServer::Start({.listen = "127.0.0.1:0"}, &router);
  REQUIRE(server.ok());
  uint16_t port = (*server)->address().port;
  std::mt19937 rng(1127);
  const std::vector<std::string> seeds = {
      "GET /hello?who=x HTTP/1.1\r\nHost: h\r\n\r\n",
      "POST /echo HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc",
      "POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
      "POST /echo HTTP/1.1\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\nabc",
  };
  const std::string alphabet = "\r\n :;%/?&=+0123456789abcdefGHT\t\x01\xff";
  for (int round = 0; round < 300; ++round) {
    std::string s = seeds[rng() % seeds.size()] + seeds[rng() % seeds.size()];
    for (int e = 0; e < 1 + static_cast<int>(rng() % 5); ++e) {
      size_t at = rng() % s.size();
      switch (rng() % 3) {
        case 0: s[at] = alphabet[rng() % alphabet.size()]; break;
        case 1: s.erase(at, 1 + rng() % 3); break;
        case 2: s.insert(at, 1, alphabet[rng() % alphabet.size()]); break;
      }
    }
    RawConn c(port);
    c.Send(s);
    ::shutdown(c.fd(), SHUT_WR);  // nothing more comes: the server answers what it can and closes
    std::string reply = c.ReadToEnd();
    if (!reply.empty()) CHECK(reply.rfind("HTTP/1.1 ", 0) == 0);
  }
  HttpClient client(Url(**server), "");
  auto ok = client.Do("GET", "/hello?who=after");
  REQUIRE(ok.ok());
  CHECK(ok->body == "hi after");
  CHECK((*server)->load().pending == 0);
}

TEST_CASE("a stream asked for with Connection: close still notices its client leaving") {
  Router router(nullptr);
  auto stream = std::make_shared<QueueStream>();
  AddStream(router, "/stream", stream);
  auto server = HttpServer::Start({.listen = "127.0.0.1:0"}, &router);
  REQUIRE(server.ok());
  RawConn c((*server)->address().port);
  c.Send("GET /stream HTTP/1.1\r\nConnection: close\r\n\r\n");
  stream->Push("first");
  CHECK(c.ReadUntil("first").find("200 OK") != std::string::npos);
  c.Close();
  CHECK(kiln::test::WaitUntil([&] { return stream->closed.load(); }));
  CHECK((*server)->load().streams == 0);
}

TEST_CASE("a body that never comes is cut off at the idle timeout") {
  Router router(nullptr);
  AddEcho(router);
  auto server = HttpServer::Start({.listen = "127.0.0.1:0", .idle_timeout_s = 1}, &router);
  REQUIRE(server.ok());
  RawConn c((*server)->address().port);
  c.Send("POST /echo HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc");
  CHECK(c.ReadToEnd().empty());  // returns once the server closes it
}

TEST_CASE("a large refused body still gets its answer, not a reset connection") {
  Router router(nullptr);
  AddEcho(router);  // /echo takes 64 bytes
  auto server = HttpServer::Start({.listen = "127.0.0.1:0"}, &router);
  REQUIRE(server.ok());
  RawConn c((*server)->address().port);
  // Beyond what is read to keep the connection, and beyond what the socket
  // buffers hold.
  const std::string body(32 << 20, 'x');
  std::string req =
      "POST /echo HTTP/1.1\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
  // The client sends everything before it reads, as simple clients do: a
  // server that closed on unread input would reset the connection and the
  // send would fail (EPIPE or ECONNRESET) before the answer is read.
  size_t sent = 0;
  while (sent < req.size()) {
    ssize_t n = ::send(c.fd(), req.data() + sent, req.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) break;
    sent += static_cast<size_t>(n);
  }
  CHECK(sent == req.size());
  std::string reply = c.ReadToEnd();
  CHECK(reply.rfind("HTTP/1.1 413 ", 0) == 0);
  CHECK(reply.find("request body larger than 64 bytes") != std::string::npos);
}

TEST_CASE("hundreds of pipelined requests on one connection are all answered, in order") {
  // More than the read-ahead limit and more than one turn of the loop.
  Router router(nullptr);
  AddEcho(router);
  auto server = HttpServer::Start({.listen = "127.0.0.1:0", .threads = 1}, &router);
  REQUIRE(server.ok());
  RawConn c((*server)->address().port);
  std::string all;
  for (int i = 0; i < 500; ++i)
    all += "GET /hello?who=" + std::to_string(i) + " HTTP/1.1\r\n" +
           (i == 499 ? "Connection: close\r\n" : "") + "\r\n";
  std::thread sender([&] { c.Send(all); });
  std::string reply = c.ReadToEnd();
  sender.join();
  size_t at = 0;
  int answered = 0;
  for (int i = 0; i < 500; ++i) {
    at = reply.find("hi " + std::to_string(i) + "H", at);  // "H": the next answer's status line
    if (i == 499) at = reply.find("hi 499", reply.size() - 64);
    if (at == std::string::npos) break;
    ++answered;
  }
  CHECK(answered == 500);
}
