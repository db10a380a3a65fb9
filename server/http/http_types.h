#pragma once
// What an HTTP handler sees and returns. Plain structs, apart from the
// server's connections, so that handlers can be unit-tested by calling
// them.

#include <sys/types.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/json.h"
#include "common/status.h"

namespace kiln::http {

// Who made a request, as the authenticator decided from its bearer token.
struct Principal {
  enum class Kind { kAnonymous, kAdmin, kNode };
  Kind kind = Kind::kAnonymous;
  std::string node;  // for kNode: the node the token belongs to

  bool is_admin() const { return kind == Kind::kAdmin; }
  // Admin, or the node's own token.
  bool MayActAs(std::string_view node_id) const {
    return is_admin() || (kind == Kind::kNode && node == node_id);
  }
};

struct HttpRequest {
  std::string method;
  std::string path;  // decoded, without the query
  std::map<std::string, std::string> query;
  std::vector<std::pair<std::string, std::string>> headers;  // lower-case names
  std::string body;
  std::string remote;                         // "127.0.0.1:53412"
  std::map<std::string, std::string> params;  // from the route pattern
  Principal principal;

  std::string Header(std::string_view lower_name) const;
  // Query parameter or fallback.
  std::string Query(const std::string& key, std::string fallback = {}) const;
  bool HasQuery(const std::string& key) const { return query.count(key) > 0; }
  std::string Param(const std::string& key) const;
  // The token from "Authorization: Bearer <t>", or "".
  std::string BearerToken() const;
  // Parses the body as JSON; an error names "request body" and the offset.
  Result<Json> JsonBody() const;
};

// A response body produced piece by piece (watch streams, image streams).
// The server calls Read() from its event loop whenever the socket can take
// more. Read must never block.
class BodyStream {
 public:
  // Lets a stream with nothing to send park its connection, and wake it.
  class Parking {
   public:
    virtual ~Parking() = default;
    // Parks the connection: the server stops calling Read until Unpark().
    // Call only from inside Read, right before returning kWouldBlock.
    virtual void Park() = 0;
    // Wakes a parked connection. Any thread; call only after Park(), and
    // never once Closed() has returned (the Parking may be gone then).
    virtual void Unpark() = 0;
  };

  static constexpr ssize_t kWouldBlock = 0;
  static constexpr ssize_t kEnd = -1;
  static constexpr ssize_t kError = -2;

  virtual ~BodyStream() = default;
  // Copies up to max bytes into buf and returns the count, or kEnd when the
  // body is complete, kError to abort the connection, or kWouldBlock after
  // calling parking.Park() when nothing is ready.
  virtual ssize_t Read(char* buf, size_t max, Parking& parking) = 0;

  // A region of an open file to send next with sendfile(2), so its bytes
  // are neither read into the server nor copied into the socket (an image
  // stream's object frames). fd stays owned by the stream and open until
  // the next call to File or Read.
  struct FileRegion {
    int fd = -1;
    uint64_t offset = 0;
    uint64_t size = 0;
  };
  // True when the body's next bytes are such a region: *region describes
  // them and the stream has moved past them. A stream that offers regions
  // stops its Read before each one (Read may still copy a region itself when
  // it is called there, as without this call).
  virtual bool File(FileRegion* region) {
    (void)region;
    return false;
  }
  // The client went away or the server is stopping. Called once, from the
  // server's thread; Read is never called after it.
  virtual void Closed() {}
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;

  // A file region sent with sendfile(2); the server closes the fd.
  int file_fd = -1;
  uint64_t file_offset = 0;
  uint64_t file_size = 0;

  // A streamed body (takes precedence over body and file).
  std::shared_ptr<BodyStream> stream;

  static HttpResponse JsonBody(const Json& j, int status = 200);
  static HttpResponse Text(std::string text, int status = 200,
                           std::string content_type = "text/plain; charset=utf-8");
  // The API's JSON error body with the HTTP status that fits the code.
  static HttpResponse Error(const Status& s);
  static HttpResponse File(int fd, uint64_t offset, uint64_t size, std::string content_type);
};

// Maps a Status code to the HTTP status the API answers with.
int HttpStatusFor(Code code);

// Completes a request, once, from any thread. Handlers that must wait (for
// an fsync, another server, a watch) keep the Responder and call Send later.
class Responder {
 public:
  using SendFn = std::function<void(HttpResponse)>;
  Responder() = default;
  explicit Responder(SendFn fn) : fn_(std::make_shared<SendFn>(std::move(fn))) {}
  // Sends the response. Calling it twice is a programming error and the
  // second call is ignored.
  void Send(HttpResponse r) const;
  void SendJson(const Json& j, int status = 200) const { Send(HttpResponse::JsonBody(j, status)); }
  void SendError(const Status& s) const { Send(HttpResponse::Error(s)); }

 private:
  std::shared_ptr<SendFn> fn_;
};

using Handler = std::function<HttpResponse(HttpRequest&)>;
using AsyncHandler = std::function<void(HttpRequest&, Responder)>;

}  // namespace kiln::http
