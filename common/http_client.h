#pragma once
// A small blocking HTTP/1.1 client, shared by the `kiln` CLI and
// kiln-agent. One HttpClient keeps one connection alive across calls.
//
// Its own rather than libcurl's: kiln speaks plain HTTP to its own server,
// and libcurl's dependencies (TLS, Kerberos, LDAP, SSH, ...) cost every
// start of `kiln` and kiln-agent their dynamic linking (a program linking
// only libcurl starts 6.6 ms later here; kiln-agent went from 7 to 4 ms)
// and the install environment their bytes. Bodies are framed by Content-Length,
// chunked transfer coding or the connection's end; a kept-alive connection
// the server has closed meanwhile is replaced, and the request sent again,
// when not a byte of the reply had arrived.
//
// Thread safety: an HttpClient is used by one thread at a time.

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace kiln {

struct HttpReply {
  long status = 0;
  std::string body;
  std::string content_type;
  std::vector<std::pair<std::string, std::string>> headers;  // lower-case names

  // First header with this lower-case name, or "".
  std::string Header(std::string_view name) const;
};

struct HttpRequestOptions {
  std::string content_type;  // for a body
  std::vector<std::pair<std::string, std::string>> headers;
  // Whole-transfer limit; zero means none (streams).
  std::chrono::milliseconds timeout{30000};
};

class HttpClient {
 public:
  // base_url: "http://127.0.0.1:9000" (no trailing slash needed).
  // token: sent as "Authorization: Bearer <token>" when not empty.
  HttpClient(std::string base_url, std::string token);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  const std::string& base_url() const { return base_url_; }
  const std::string& token() const { return token_; }
  void set_token(std::string token) { token_ = std::move(token); }

  // Performs a request. Transport failures (refused, timeout, reset) give
  // kUnavailable or kTimeout naming the URL; any HTTP status is a reply.
  Result<HttpReply> Do(std::string_view method, std::string_view path, std::string_view body = {},
                       const HttpRequestOptions& opts = {});
  // The same with a body in pieces, sent as they are (sendmsg's gather):
  // an upload of many objects without first copying them into one buffer.
  Result<HttpReply> DoPieces(std::string_view method, std::string_view path,
                             std::span<const std::string_view> body,
                             const HttpRequestOptions& opts = {});

  // Streams a GET: on_data gets each piece of the body as it arrives and
  // returns false to stop. The reply holds status and headers (the body is
  // empty unless the status is not 2xx, when it holds the error body).
  using DataCallback = std::function<bool(std::string_view)>;
  Result<HttpReply> Stream(std::string_view path, const DataCallback& on_data,
                           const HttpRequestOptions& opts = {});

 private:
  class Exchange;
  Result<HttpReply> Perform(std::string_view method, std::string_view path,
                            std::span<const std::string_view> body, const HttpRequestOptions& opts,
                            const DataCallback* on_data);
  Status Connect(const std::string& what,
                 std::optional<std::chrono::steady_clock::time_point> deadline);
  void Disconnect();

  std::string base_url_;
  std::string token_;
  // From base_url_: where to connect, the Host header, a path prefix; or
  // why the URL cannot be used (reported by every request).
  std::string host_, port_, host_header_, prefix_, url_error_;
  int fd_ = -1;  // the kept-alive connection
};

}  // namespace kiln
