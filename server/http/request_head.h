#pragma once
// Reading an HTTP/1.x request head (request line and header fields) from
// the bytes a connection has received so far. Pure functions over a buffer,
// so the server's event loop, the unit tests and the fuzzer share them.
//
// Strict where laxness lets requests be misread (RFC 9112 section 11: both
// Content-Length and Transfer-Encoding, two different lengths, a folded
// field line, a bare CR), lenient where clients differ harmlessly (a bare
// LF ends a line, field names in any case).

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kiln::http {

// Larger heads are refused with 431.
inline constexpr size_t kMaxRequestHead = 32 * 1024;

struct RequestHead {
  std::string method;
  std::string target;                                        // as sent: "/path?query"
  int minor_version = 1;                                     // HTTP/1.<minor>
  std::vector<std::pair<std::string, std::string>> headers;  // lower-case names

  // How the body is framed.
  bool chunked = false;
  uint64_t content_length = 0;
  bool keep_alive = true;        // HTTP/1.1 unless "Connection: close"; 1.0 never
  bool expect_continue = false;  // "Expect: 100-continue"
};

struct HeadParse {
  enum class Result { kNeedMore, kDone, kError };
  Result result = Result::kNeedMore;
  size_t consumed = 0;  // kDone: the head's length in the buffer, with its empty line
  int status = 0;       // kError: 400, 431, 501 or 505
  std::string error;    // kError: what was wrong, for the error body
};

// Parses the head at the start of buf. Empty lines before the request line
// are skipped (RFC 9112 section 2.2).
HeadParse ParseRequestHead(std::string_view buf, RequestHead* head);

// Splits a request target into its decoded path and query parameters. The
// path keeps '+' (only a query turns it into a space); a later duplicate
// query key replaces an earlier one. False with *error when the target is
// not an origin-form path, has a malformed %-escape, or decodes to a NUL.
bool DecodeTarget(std::string_view target, std::string* path,
                  std::map<std::string, std::string>* query, std::string* error);

}  // namespace kiln::http
