#pragma once
// Undoes the chunked transfer coding of a request body (RFC 9112 section
// 7.1) incrementally, as the bytes arrive: chunk sizes, extensions and
// trailer fields are read and dropped, the data appended to the body.

#include <cstdint>
#include <string>
#include <string_view>

namespace kiln::http {

class ChunkedDecoder {
 public:
  enum class Result { kNeedMore, kDone, kError };

  // Decodes from in, appending data to *body, and returns how much of in it
  // used. A body that would grow past max_body stops with kError and
  // too_large() set; malformed coding stops with kError and error() saying
  // what was wrong.
  Result Feed(std::string_view in, std::string* body, uint64_t max_body, size_t* used);

  bool too_large() const { return too_large_; }
  const std::string& error() const { return error_; }

 private:
  enum class State { kSize, kData, kDataEnd, kTrailer, kDone };
  Result Fail(std::string error);

  State state_ = State::kSize;
  uint64_t left_ = 0;  // data bytes of the current chunk still to come
  std::string line_;   // a size or trailer line split across reads
  bool too_large_ = false;
  std::string error_;
};

}  // namespace kiln::http
