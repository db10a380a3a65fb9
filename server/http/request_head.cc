#include "server/http/request_head.h"

#include <fmt/format.h>

#include "common/strings.h"

namespace kiln::http {
namespace {

// RFC 9110 section 5.6.2.
bool IsTokenChar(unsigned char c) {
  if (c >= 'a' && c <= 'z') return true;
  if (c >= 'A' && c <= 'Z') return true;
  if (c >= '0' && c <= '9') return true;
  switch (c) {
    case '!':
    case '#':
    case '$':
    case '%':
    case '&':
    case '\'':
    case '*':
    case '+':
    case '-':
    case '.':
    case '^':
    case '_':
    case '`':
    case '|':
    case '~': return true;
    default: return false;
  }
}

bool IsToken(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s)
    if (!IsTokenChar(static_cast<unsigned char>(c))) return false;
  return true;
}

// Field values: visible characters, spaces and tabs, and obs-text.
bool IsFieldValue(std::string_view s) {
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 && c != '\t') return false;
    if (c == 0x7f) return false;
  }
  return true;
}

std::string_view TrimOws(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Does the comma-separated list hold this token (any case)?
bool ListHas(std::string_view list, std::string_view token) {
  for (const std::string& item : Split(list, ','))
    if (ToLower(TrimOws(item)) == token) return true;
  return false;
}

HeadParse Fail(int status, std::string error) {
  HeadParse p;
  p.result = HeadParse::Result::kError;
  p.status = status;
  p.error = std::move(error);
  return p;
}

// Shortens what a client sent for an error message.
std::string Quote(std::string_view s) {
  std::string out;
  for (char ch : s.substr(0, 60)) {
    auto c = static_cast<unsigned char>(ch);
    out += c >= 0x20 && c < 0x7f ? fmt::format("{}", ch) : fmt::format("\\x{:02x}", c);
  }
  return "\"" + out + (s.size() > 60 ? "...\"" : "\"");
}

HeadParse ParseRequestLine(std::string_view line, RequestHead* head) {
  size_t sp1 = line.find(' ');
  size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || line.find(' ', sp2 + 1) != std::string_view::npos)
    return Fail(400, "malformed request line " + Quote(line) + " (want METHOD TARGET HTTP/1.1)");
  std::string_view method = line.substr(0, sp1);
  std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  std::string_view version = line.substr(sp2 + 1);
  if (!IsToken(method)) return Fail(400, "malformed method " + Quote(method));
  if (target.empty()) return Fail(400, "empty request target");
  for (char ch : target) {
    auto c = static_cast<unsigned char>(ch);
    if (c <= 0x20 || c == 0x7f) return Fail(400, "malformed request target " + Quote(target));
  }
  if (version == "HTTP/1.1") {
    head->minor_version = 1;
  } else if (version == "HTTP/1.0") {
    head->minor_version = 0;
  } else if (StartsWith(version, "HTTP/") && version.size() == 8 && version[6] == '.') {
    return Fail(505, "HTTP version " + Quote(version) + " is not supported (HTTP/1.1 is)");
  } else {
    return Fail(400, "malformed HTTP version " + Quote(version));
  }
  head->method = std::string(method);
  head->target = std::string(target);
  return {};
}

// Sets the body framing and connection flags from the fields.
HeadParse ApplyFields(RequestHead* head) {
  bool has_length = false;
  bool has_te = false;
  head->keep_alive = head->minor_version >= 1;
  for (const auto& [name, value] : head->headers) {
    if (name == "content-length") {
      auto n = ParseUint(value);
      if (!n) return Fail(400, "malformed Content-Length " + Quote(value));
      if (has_length && *n != head->content_length)
        return Fail(400, "two different Content-Length fields");
      head->content_length = *n;
      has_length = true;
    } else if (name == "transfer-encoding") {
      // Only "chunked" alone: kiln's clients use nothing else, and a coding
      // the server would not undo must not reach a handler as the body.
      if (ToLower(TrimOws(value)) != "chunked" || has_te)
        return Fail(501, "transfer coding " + Quote(value) + " is not supported (chunked is)");
      has_te = true;
      head->chunked = true;
    } else if (name == "connection") {
      if (ListHas(value, "close")) head->keep_alive = false;
    } else if (name == "expect" && head->minor_version >= 1) {  // 1.0: ignored (RFC 9110 10.1.1)
      if (ToLower(TrimOws(value)) != "100-continue")
        return Fail(417, "expectation " + Quote(value) + " is not supported");
      head->expect_continue = true;
    }
  }
  if (has_te && has_length)
    return Fail(400, "both Content-Length and Transfer-Encoding: the body's length is ambiguous");
  if (has_te && head->minor_version == 0)
    return Fail(400, "Transfer-Encoding in an HTTP/1.0 request");
  return {};
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool PercentDecode(std::string_view s, bool plus_is_space, std::string* out) {
  out->clear();
  out->reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '%') {
      if (i + 2 >= s.size()) return false;
      int hi = HexValue(s[i + 1]);
      int lo = HexValue(s[i + 2]);
      if (hi < 0 || lo < 0) return false;
      c = static_cast<char>(hi * 16 + lo);
      if (c == '\0') return false;
      i += 2;
    } else if (c == '+' && plus_is_space) {
      c = ' ';
    }
    out->push_back(c);
  }
  return true;
}

}  // namespace

HeadParse ParseRequestHead(std::string_view buf, RequestHead* head) {
  *head = RequestHead{};
  size_t pos = 0;
  bool have_request_line = false;
  for (;;) {
    size_t lf = buf.find('\n', pos);
    if (lf == std::string_view::npos) {
      if (buf.size() > kMaxRequestHead)
        return Fail(431, fmt::format("request head larger than {} bytes", kMaxRequestHead));
      return {};
    }
    if (lf + 1 > kMaxRequestHead)
      return Fail(431, fmt::format("request head larger than {} bytes", kMaxRequestHead));
    std::string_view line = buf.substr(pos, lf - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.find('\r') != std::string_view::npos) return Fail(400, "bare CR in the request head");
    pos = lf + 1;

    if (!have_request_line) {
      if (line.empty()) continue;  // a stray CRLF between requests
      HeadParse p = ParseRequestLine(line, head);
      if (p.result == HeadParse::Result::kError) return p;
      have_request_line = true;
      continue;
    }
    if (line.empty()) break;  // end of the head
    if (line.front() == ' ' || line.front() == '\t')
      return Fail(400, "folded header line " + Quote(line) + " (obsolete line folding)");
    size_t colon = line.find(':');
    if (colon == std::string_view::npos)
      return Fail(400, "malformed header line " + Quote(line) + " (no colon)");
    std::string_view name = line.substr(0, colon);
    if (!IsToken(name)) return Fail(400, "malformed header name " + Quote(name));
    std::string_view value = TrimOws(line.substr(colon + 1));
    if (!IsFieldValue(value))
      return Fail(400, "control character in header " + Quote(name) + "'s value");
    head->headers.emplace_back(ToLower(name), std::string(value));
  }
  HeadParse p = ApplyFields(head);
  if (p.result == HeadParse::Result::kError) return p;
  p.result = HeadParse::Result::kDone;
  p.consumed = pos;
  return p;
}

bool DecodeTarget(std::string_view target, std::string* path,
                  std::map<std::string, std::string>* query, std::string* error) {
  query->clear();
  // Absolute form (a proxy's): keep only the path.
  for (std::string_view scheme : {"http://", "https://"}) {
    if (target.size() > scheme.size() && ToLower(target.substr(0, scheme.size())) == scheme) {
      size_t slash = target.find('/', scheme.size());
      target = slash == std::string_view::npos ? "/" : target.substr(slash);
    }
  }
  if (target.empty() || target.front() != '/') {
    *error = "request target " + Quote(target) + " is not a path";
    return false;
  }
  size_t q = target.find('?');
  std::string_view raw_path = target.substr(0, q);
  size_t hash = raw_path.find('#');
  if (hash != std::string_view::npos) raw_path = raw_path.substr(0, hash);
  if (!PercentDecode(raw_path, false, path)) {
    *error = "malformed %-escape in request path " + Quote(raw_path);
    return false;
  }
  if (q == std::string_view::npos) return true;
  std::string_view raw_query = target.substr(q + 1);
  raw_query = raw_query.substr(0, raw_query.find('#'));
  std::string key, value;
  while (!raw_query.empty()) {
    size_t amp = raw_query.find('&');
    std::string_view pair = raw_query.substr(0, amp);
    raw_query = amp == std::string_view::npos ? std::string_view{} : raw_query.substr(amp + 1);
    if (pair.empty()) continue;
    size_t eq = pair.find('=');
    std::string_view k = pair.substr(0, eq);
    std::string_view v = eq == std::string_view::npos ? std::string_view{} : pair.substr(eq + 1);
    if (!PercentDecode(k, true, &key) || !PercentDecode(v, true, &value)) {
      *error = "malformed %-escape in query parameter " + Quote(pair);
      return false;
    }
    (*query)[key] = value;
  }
  return true;
}

}  // namespace kiln::http
