#pragma once
// The status line and header fields of an answer, written straight into
// the connection's output buffer (no formatting library, no temporary
// strings: it runs for every request).

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/byte_buffer.h"

namespace kiln::http {

struct ResponseHead {
  enum class Framing {
    kLength,   // Content-Length
    kChunked,  // Transfer-Encoding: chunked (streams, HTTP/1.1)
    kClose,    // the body ends with the connection (streams, HTTP/1.0)
    kNone,     // 1xx, 204, 304
  };
  int status = 200;
  std::string_view content_type;
  const std::vector<std::pair<std::string, std::string>>* headers = nullptr;
  Framing framing = Framing::kLength;
  uint64_t content_length = 0;
  bool keep_alive = true;
};

void RenderResponseHead(const ResponseHead& head, ByteBuffer* out);

// "OK", "Not Found", ...; "" for a code it does not know.
std::string_view ReasonPhrase(int status);

}  // namespace kiln::http
