#pragma once
// Maps (method, path) to handlers and applies the access policy before a
// handler runs, so no handler can forget to check a token.
//
// Patterns are literal segments, "{name}" for one segment and "{name...}"
// for the rest of the path (coordination paths, file paths):
//   /api/v1/nodes/{id}/plan     /api/v1/coord/data/{path...}

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "server/http/http_types.h"

namespace kiln::http {

enum class Access {
  kPublic,         // anyone (health, metrics, version, boot files)
  kAuthenticated,  // the admin token or a node token; the handler checks which node
  kAdmin,          // the admin token only
};

struct RouteOptions {
  Access access = Access::kAdmin;
  // Larger bodies are refused with 413 before they are read.
  size_t max_body = 1 << 20;
  // For metrics: a low-cardinality name; defaults to the pattern.
  std::string name;
};

// Turns a bearer token into a Principal. Unknown tokens give kAnonymous.
// Thread-safe: called from every HTTP thread.
class Authenticator {
 public:
  virtual ~Authenticator() = default;
  virtual Principal Authenticate(std::string_view token) const = 0;
};

class Router {
 public:
  struct Route {
    std::string method;
    std::string pattern;
    std::vector<std::string> segments;
    AsyncHandler handler;
    RouteOptions options;
  };

  explicit Router(const Authenticator* auth) : auth_(auth) {}

  void Add(std::string method, std::string pattern, AsyncHandler handler, RouteOptions opts = {});
  // A handler that answers at once.
  void AddSync(std::string method, std::string pattern, Handler handler, RouteOptions opts = {});

  // Finds the route for a request and fills req.params. Returns nullptr and
  // sets *status to 404 (no such path) or 405 (path exists, other method).
  const Route* Find(HttpRequest& req, int* status) const;

  // Authenticates, authorises and runs the route's handler. Never throws;
  // a handler's exception becomes a 500 with the exception's text.
  void Dispatch(const Route& route, HttpRequest& req, Responder responder) const;

  const std::vector<Route>& routes() const { return routes_; }

 private:
  const Authenticator* auth_;
  std::vector<Route> routes_;
};

}  // namespace kiln::http
