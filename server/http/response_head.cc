#include "server/http/response_head.h"

#include <charconv>
#include <ctime>

namespace kiln::http {
namespace {

// "Date: Fri, 27 Nov 2026 05:01:02 GMT\r\n", made once a second per thread.
std::string_view DateField() {
  thread_local time_t cached_at = -1;
  thread_local char field[64];
  thread_local size_t len = 0;
  time_t now = ::time(nullptr);
  if (now != cached_at) {
    tm t{};
    ::gmtime_r(&now, &t);
    len = std::strftime(field, sizeof field, "Date: %a, %d %b %Y %H:%M:%S GMT\r\n", &t);
    cached_at = now;
  }
  return {field, len};
}

void AppendNumber(uint64_t v, ByteBuffer* out) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  out->Append({buf, static_cast<size_t>(end - buf)});
}

}  // namespace

std::string_view ReasonPhrase(int status) {
  switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 412: return "Precondition Failed";
    case 413: return "Content Too Large";
    case 416: return "Range Not Satisfiable";
    case 417: return "Expectation Failed";
    case 422: return "Unprocessable Content";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 499: return "Client Closed Request";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "";
  }
}

void RenderResponseHead(const ResponseHead& head, ByteBuffer* out) {
  out->Append("HTTP/1.1 ");
  AppendNumber(static_cast<uint64_t>(head.status), out);
  out->Append(" ");
  std::string_view reason = ReasonPhrase(head.status);
  out->Append(reason.empty() ? "Status" : reason);
  out->Append("\r\n");
  out->Append(DateField());
  if (!head.content_type.empty()) {
    out->Append("Content-Type: ");
    out->Append(head.content_type);
    out->Append("\r\n");
  }
  if (head.headers) {
    for (const auto& [name, value] : *head.headers) {
      out->Append(name);
      out->Append(": ");
      out->Append(value);
      out->Append("\r\n");
    }
  }
  switch (head.framing) {
    case ResponseHead::Framing::kLength:
      out->Append("Content-Length: ");
      AppendNumber(head.content_length, out);
      out->Append("\r\n");
      break;
    case ResponseHead::Framing::kChunked: out->Append("Transfer-Encoding: chunked\r\n"); break;
    case ResponseHead::Framing::kClose:
    case ResponseHead::Framing::kNone: break;
  }
  if (!head.keep_alive) out->Append("Connection: close\r\n");
  out->Append("\r\n");
}

}  // namespace kiln::http
