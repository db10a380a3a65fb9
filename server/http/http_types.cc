#include "server/http/http_types.h"

#include "common/strings.h"

namespace kiln::http {

std::string HttpRequest::Header(std::string_view lower_name) const {
  for (const auto& [k, v] : headers)
    if (k == lower_name) return v;
  return {};
}

std::string HttpRequest::Query(const std::string& key, std::string fallback) const {
  auto it = query.find(key);
  return it == query.end() ? fallback : it->second;
}

std::string HttpRequest::Param(const std::string& key) const {
  auto it = params.find(key);
  return it == params.end() ? std::string() : it->second;
}

std::string HttpRequest::BearerToken() const {
  std::string auth = Header("authorization");
  std::string_view a = Trim(auth);
  if (a.size() > 7 && ToLower(a.substr(0, 7)) == "bearer ") return std::string(Trim(a.substr(7)));
  return {};
}

Result<Json> HttpRequest::JsonBody() const {
  if (body.empty()) return InvalidArgument("request body: expected JSON, got an empty body");
  return ParseJson(body, "request body");
}

int HttpStatusFor(Code code) {
  switch (code) {
    case Code::kOk: return 200;
    case Code::kInvalidArgument: return 400;
    case Code::kNotFound: return 404;
    case Code::kAlreadyExists: return 409;
    case Code::kBadVersion: return 409;
    case Code::kNotEmpty: return 409;
    case Code::kNoChildrenForEphemerals: return 400;
    case Code::kTooLarge: return 413;
    case Code::kUnauthenticated: return 401;
    case Code::kPermissionDenied: return 403;
    case Code::kFailedPrecondition: return 412;
    case Code::kCompacted: return 410;
    case Code::kSessionExpired: return 404;
    case Code::kIoError: return 500;
    case Code::kCorruption: return 500;
    case Code::kUnavailable: return 503;
    case Code::kTimeout: return 504;
    case Code::kCancelled: return 499;
    case Code::kInternal: return 500;
  }
  return 500;
}

HttpResponse HttpResponse::JsonBody(const Json& j, int status) {
  HttpResponse r;
  r.status = status;
  // Invalid UTF-8 (echoed from a URL, say) becomes U+FFFD instead of an
  // exception: an answer must always be valid JSON.
  r.body = j.dump(-1, ' ', false, Json::error_handler_t::replace);
  r.body += '\n';
  return r;
}

HttpResponse HttpResponse::Text(std::string text, int status, std::string content_type) {
  HttpResponse r;
  r.status = status;
  r.content_type = std::move(content_type);
  r.body = std::move(text);
  return r;
}

HttpResponse HttpResponse::Error(const Status& s) {
  return JsonBody(ErrorJson(s), HttpStatusFor(s.code()));
}

HttpResponse HttpResponse::File(int fd, uint64_t offset, uint64_t size, std::string content_type) {
  HttpResponse r;
  r.content_type = std::move(content_type);
  r.file_fd = fd;
  r.file_offset = offset;
  r.file_size = size;
  return r;
}

void Responder::Send(HttpResponse r) const {
  if (!fn_ || !*fn_) return;
  auto fn = std::move(*fn_);
  *fn_ = nullptr;
  fn(std::move(r));
}

}  // namespace kiln::http
