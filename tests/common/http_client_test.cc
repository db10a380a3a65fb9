// The HTTP client against a scripted server on loopback: each accepted
// connection reads requests and answers with the bytes a test gives, so
// framings, early closes and malformed replies can be tried one by one.

#include "common/http_client.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <functional>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

using namespace kiln;

namespace {

// Answers each request it reads with answer(request, n) (n counts requests
// over all connections); an empty answer closes the connection unanswered.
class ScriptedServer {
 public:
  using Answer = std::function<std::string(const std::string& request, int n)>;
  explicit ScriptedServer(Answer answer) : answer_(std::move(answer)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    REQUIRE(::listen(fd_, 16) == 0);
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { Serve(); });
  }
  ~ScriptedServer() {
    stop_ = true;
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    thread_.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  int connections() const { return connections_; }
  std::string last_request() {
    std::lock_guard lock(mu_);
    return last_;
  }

 private:
  void Serve() {
    while (!stop_) {
      int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) return;
      ++connections_;
      std::string in;
      char buf[65536];
      for (;;) {
        // One request: its head, then Content-Length bytes of body.
        size_t end;
        bool closed = false;
        while ((end = in.find("\r\n\r\n")) == std::string::npos) {
          ssize_t r = ::recv(c, buf, sizeof buf, 0);
          if (r <= 0) {
            closed = true;
            break;
          }
          in.append(buf, static_cast<size_t>(r));
        }
        if (closed) break;
        size_t body = 0;
        size_t cl = in.find("Content-Length: ");
        if (cl != std::string::npos && cl < end) body = std::stoul(in.substr(cl + 16));
        while (in.size() < end + 4 + body) {
          ssize_t r = ::recv(c, buf, sizeof buf, 0);
          if (r <= 0) break;
          in.append(buf, static_cast<size_t>(r));
        }
        std::string request = in.substr(0, end + 4 + body);
        in.erase(0, request.size());
        {
          std::lock_guard lock(mu_);
          last_ = request;
        }
        std::string out = answer_(request, requests_++);
        if (out.empty()) break;
        ::send(c, out.data(), out.size(), MSG_NOSIGNAL);
        if (out.find("Connection: close") != std::string::npos) break;
      }
      ::close(c);
    }
  }

  Answer answer_;
  int fd_ = -1;
  uint16_t port_ = 0;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<int> connections_{0}, requests_{0};
  std::mutex mu_;
  std::string last_;
};

std::string Ok(const std::string& body) {
  return "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " +
         std::to_string(body.size()) + "\r\n\r\n" + body;
}

}  // namespace

TEST_CASE("http client: requests carry method, path, token, type and body, replies parse") {
  ScriptedServer s([](const std::string&, int) { return Ok("hello"); });
  HttpClient c(s.url() + "/", "secret");
  auto r = c.Do("POST", "/api/x?y=1", "the body", {.content_type = "application/json"});
  REQUIRE(r.ok());
  CHECK(r->status == 200);
  CHECK(r->body == "hello");
  CHECK(r->content_type == "text/plain");
  CHECK(r->Header("content-length") == "5");
  std::string req = s.last_request();
  CHECK(req.rfind("POST /api/x?y=1 HTTP/1.1\r\n", 0) == 0);
  CHECK(req.find("Authorization: Bearer secret\r\n") != std::string::npos);
  CHECK(req.find("Content-Type: application/json\r\n") != std::string::npos);
  CHECK(req.find("Content-Length: 8\r\n\r\nthe body") != std::string::npos);
  // The connection is kept for the next request.
  REQUIRE(c.Do("GET", "/again").ok());
  CHECK(s.connections() == 1);
  CHECK(s.last_request().find("Content-Length") == std::string::npos);
}

TEST_CASE("http client: chunked replies, streamed in pieces, and error bodies kept whole") {
  ScriptedServer s([](const std::string& req, int) -> std::string {
    if (req.find("/missing") != std::string::npos)
      return "HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nno such x";
    return "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
           "5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nTrailer: x\r\n\r\n";
  });
  HttpClient c(s.url(), "");
  auto whole = c.Do("GET", "/chunks");
  REQUIRE(whole.ok());
  CHECK(whole->body == "hello, world");
  std::string streamed;
  auto r = c.Stream("/chunks", [&](std::string_view piece) {
    streamed += piece;
    return true;
  });
  REQUIRE(r.ok());
  CHECK(streamed == "hello, world");
  CHECK(r->body.empty());
  bool called = false;
  auto missing = c.Stream("/missing", [&](std::string_view) { return called = true; });
  REQUIRE(missing.ok());
  CHECK(missing->status == 404);
  CHECK(missing->body == "no such x");
  CHECK(!called);
  CHECK(s.connections() == 1);  // every reply was complete: one connection
}

TEST_CASE("http client: large bodies arrive exact in every framing, across many reads") {
  // Bytes that differ along the body, chunks of uneven sizes (small ones,
  // ones larger than any read): whatever the reads split, the bytes the
  // caller gets must be the body, in order.
  std::mt19937 rng(7);
  std::string body(3 << 20, '\0');
  for (auto& ch : body) ch = static_cast<char>(rng());
  std::string chunked = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (size_t at = 0; at < body.size();) {
    size_t n = std::min<size_t>(body.size() - at, 1 + rng() % 400000);
    chunked += fmt::format("{:x}\r\n", n) + body.substr(at, n) + "\r\n";
    at += n;
  }
  chunked += "0\r\n\r\n";
  ScriptedServer s([&](const std::string& req, int) -> std::string {
    if (req.find("/chunked") != std::string::npos) return chunked;
    if (req.find("/length") != std::string::npos) return Ok(body);
    return "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + body;  // until close
  });
  HttpClient c(s.url(), "");
  for (std::string path : {"/chunked", "/length", "/close"}) {
    INFO(path);
    auto whole = c.Do("GET", path);
    REQUIRE(whole.ok());
    CHECK(whole->body == body);
    std::string streamed;
    size_t pieces = 0;
    auto r = c.Stream(path, [&](std::string_view piece) {
      streamed += piece;
      ++pieces;
      return true;
    });
    REQUIRE(r.ok());
    CHECK(streamed == body);
    CHECK(pieces > 1);
  }
}

TEST_CASE("http client: a body in pieces arrives as their concatenation") {
  ScriptedServer s([](const std::string& req, int) { return Ok(std::to_string(req.size())); });
  HttpClient c(s.url(), "");
  // Empty pieces, many small ones (more than one send takes), large ones
  // (more than the socket takes at once).
  std::mt19937 rng(11);
  std::vector<std::string> owned;
  for (int i = 0; i < 300; ++i) {
    size_t n = i % 7 == 0 ? 0 : i % 50 == 1 ? 600000 + rng() % 1000 : rng() % 300;
    std::string p(n, '\0');
    for (auto& ch : p) ch = static_cast<char>('a' + rng() % 26);
    owned.push_back(std::move(p));
  }
  std::vector<std::string_view> pieces(owned.begin(), owned.end());
  std::string joined;
  for (const auto& p : owned) joined += p;
  auto r = c.DoPieces("POST", "/up", pieces);
  REQUIRE(r.ok());
  std::string req = s.last_request();
  CHECK(req.find(fmt::format("Content-Length: {}\r\n", joined.size())) != std::string::npos);
  CHECK(req.substr(req.find("\r\n\r\n") + 4) == joined);
  // None at all: an empty body, as Do's.
  auto empty = c.DoPieces("POST", "/up", {});
  REQUIRE(empty.ok());
  CHECK(s.last_request().find("Content-Length: 0\r\n") != std::string::npos);
}

TEST_CASE("http client: a stream stopped by its reader ends the request, not the client") {
  ScriptedServer s([](const std::string&, int n) -> std::string {
    if (n == 0)
      return "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\none\r\n3\r\ntwo\r\n";
    return Ok("next");
  });
  HttpClient c(s.url(), "");
  int pieces = 0;
  auto r = c.Stream("/events", [&](std::string_view) { return ++pieces < 1; });
  REQUIRE(r.ok());
  CHECK(pieces == 1);
  auto next = c.Do("GET", "/next");
  REQUIRE(next.ok());
  CHECK(next->body == "next");
  CHECK(s.connections() == 2);  // the stopped stream's connection was dropped
}

TEST_CASE("http client: a kept-alive connection the server closed is replaced once") {
  // The first connection answers one request, then closes without a word.
  ScriptedServer s(
      [](const std::string&, int n) -> std::string { return n == 1 ? std::string() : Ok("fine"); });
  HttpClient c(s.url(), "");
  REQUIRE(c.Do("GET", "/1").ok());
  auto r = c.Do("PUT", "/2", "data");
  REQUIRE(r.ok());
  CHECK(r->body == "fine");
  CHECK(s.connections() == 2);
}

TEST_CASE("http client: bad replies and dead servers are clear errors naming the request") {
  SECTION("malformed status line") {
    ScriptedServer s([](const std::string&, int) { return std::string("SPDY/3 hi\r\n\r\n"); });
    auto r = HttpClient(s.url(), "").Do("GET", "/x");
    REQUIRE(!r.ok());
    CHECK(r.status().code() == Code::kUnavailable);
    CHECK(r.status().message().find("GET " + s.url() + "/x: malformed status line") == 0);
  }
  SECTION("body cut short") {
    ScriptedServer s([](const std::string&, int) {
      return std::string(
          "HTTP/1.1 200 OK\r\nContent-Length: 100\r\nConnection: close\r\n\r\nshort");
    });
    auto r = HttpClient(s.url(), "").Do("GET", "/x");
    REQUIRE(!r.ok());
    CHECK(r.status().message().find("closed the connection in the reply's body") !=
          std::string::npos);
  }
  SECTION("malformed chunk") {
    ScriptedServer s([](const std::string&, int) {
      return std::string("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n");
    });
    auto r = HttpClient(s.url(), "").Do("GET", "/x");
    REQUIRE(!r.ok());
    CHECK(r.status().message().find("malformed chunk size \"zz\"") != std::string::npos);
  }
  SECTION("no reply at all: the server closes every connection") {
    ScriptedServer s([](const std::string&, int) { return std::string(); });
    auto r = HttpClient(s.url(), "").Do("GET", "/x");
    REQUIRE(!r.ok());
    CHECK(r.status().message().find("closed the connection before replying") != std::string::npos);
  }
  SECTION("a reply that never comes: the request's timeout") {
    ScriptedServer s([](const std::string&, int) {
      std::this_thread::sleep_for(std::chrono::milliseconds(600));
      return Ok("late");
    });
    auto r =
        HttpClient(s.url(), "").Do("GET", "/slow", {}, {.timeout = std::chrono::milliseconds(100)});
    REQUIRE(!r.ok());
    CHECK(r.status().code() == Code::kTimeout);
    CHECK(r.status().message() == "GET " + s.url() + "/slow: timed out");
  }
  SECTION("nobody listening") {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    ::close(fd);  // a port that was free a moment ago
    std::string url = "http://127.0.0.1:" + std::to_string(ntohs(a.sin_port));
    auto r = HttpClient(url, "").Do("GET", "/x");
    REQUIRE(!r.ok());
    CHECK(r.status().code() == Code::kUnavailable);
    CHECK(r.status().message() == "GET " + url + "/x: connect: Connection refused");
  }
  SECTION("URLs kiln cannot use") {
    for (const char* url : {"https://kiln:9000", "kiln:9000", "http://kiln:0", "http://[::1",
                            "http://:80", "http://kiln:99999"}) {
      INFO(url);
      auto r = HttpClient(url, "").Do("GET", "/x");
      REQUIRE(!r.ok());
      CHECK(r.status().code() == Code::kInvalidArgument);
      CHECK(r.status().message().find(url) == 0);
    }
  }
}

TEST_CASE("http client: IPv6 literals and path prefixes") {
  ScriptedServer s([](const std::string&, int) { return Ok("v4"); });
  // The prefix is kept in front of every path; the Host header names it.
  HttpClient c(s.url() + "/kiln", "");
  REQUIRE(c.Do("GET", "/api/v1/meta").ok());
  CHECK(s.last_request().rfind("GET /kiln/api/v1/meta HTTP/1.1\r\nHost: 127.0.0.1:", 0) == 0);
  // [::1] parses (whether loopback IPv6 exists here or not, the error is
  // about connecting, not the URL).
  auto v6 = HttpClient("http://[::1]:1", "").Do("GET", "/x");
  REQUIRE(!v6.ok());
  CHECK(v6.status().code() != Code::kInvalidArgument);
}
