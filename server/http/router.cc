#include "server/http/router.h"

#include <exception>

#include "common/strings.h"

namespace kiln::http {
namespace {

std::vector<std::string> PathSegments(std::string_view path) {
  std::vector<std::string> out;
  for (auto& s : Split(path, '/'))
    if (!s.empty()) out.push_back(std::move(s));
  return out;
}

bool IsRest(const std::string& seg) {
  return EndsWith(seg, "...}");
}

bool MatchSegments(const std::vector<std::string>& pattern, const std::vector<std::string>& segs,
                   std::map<std::string, std::string>* params) {
  size_t i = 0;
  for (; i < pattern.size(); ++i) {
    const std::string& p = pattern[i];
    if (IsRest(p)) {
      // The rest keeps its slashes; a leading one marks it as a path.
      std::string rest;
      for (size_t k = i; k < segs.size(); ++k) rest += "/" + segs[k];
      (*params)[p.substr(1, p.size() - 5)] = rest.empty() ? "/" : rest;
      return true;
    }
    if (i >= segs.size()) return false;
    if (p.size() > 2 && p.front() == '{' && p.back() == '}') {
      (*params)[p.substr(1, p.size() - 2)] = segs[i];
    } else if (p != segs[i]) {
      return false;
    }
  }
  return i == segs.size();
}

}  // namespace

void Router::Add(std::string method, std::string pattern, AsyncHandler handler, RouteOptions opts) {
  Route r;
  r.method = std::move(method);
  r.segments = PathSegments(pattern);
  r.pattern = std::move(pattern);
  r.handler = std::move(handler);
  if (opts.name.empty()) opts.name = r.pattern;
  r.options = std::move(opts);
  routes_.push_back(std::move(r));
}

void Router::AddSync(std::string method, std::string pattern, Handler handler, RouteOptions opts) {
  Add(
      std::move(method), std::move(pattern),
      [h = std::move(handler)](HttpRequest& req, Responder res) { res.Send(h(req)); },
      std::move(opts));
}

const Router::Route* Router::Find(HttpRequest& req, int* status) const {
  bool path_matched = false;
  // Split once: every route is tried against the same segments.
  const std::vector<std::string> segs = PathSegments(req.path);
  for (const auto& r : routes_) {
    std::map<std::string, std::string> params;
    if (!MatchSegments(r.segments, segs, &params)) continue;
    bool method_ok = r.method == req.method || (r.method == "GET" && req.method == "HEAD");
    if (!method_ok) {
      path_matched = true;
      continue;
    }
    req.params = std::move(params);
    return &r;
  }
  *status = path_matched ? 405 : 404;
  return nullptr;
}

void Router::Dispatch(const Route& route, HttpRequest& req, Responder responder) const {
  std::string token = req.BearerToken();
  if (!token.empty() && auth_) req.principal = auth_->Authenticate(token);

  if (route.options.access != Access::kPublic) {
    if (req.principal.kind == Principal::Kind::kAnonymous) {
      responder.SendError(Unauthenticated(
          token.empty() ? "this call needs a token (Authorization: Bearer ...); see kiln --help"
                        : "the token is not valid on this server"));
      return;
    }
    if (route.options.access == Access::kAdmin && !req.principal.is_admin()) {
      responder.SendError(PermissionDenied("this call needs the admin token"));
      return;
    }
  }
  try {
    route.handler(req, responder);
  } catch (const std::exception& e) {
    responder.SendError(Internal(std::string("handler failed: ") + e.what()));
  } catch (...) {
    responder.SendError(Internal("handler failed"));
  }
}

}  // namespace kiln::http
