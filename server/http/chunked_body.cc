#include "server/http/chunked_body.h"

#include <fmt/format.h>

#include <algorithm>

namespace kiln::http {
namespace {

// A size line, an extension or a trailer field longer than this is not
// something a client of kiln's sends.
constexpr size_t kMaxLine = 4096;

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

ChunkedDecoder::Result ChunkedDecoder::Fail(std::string error) {
  error_ = std::move(error);
  return Result::kError;
}

ChunkedDecoder::Result ChunkedDecoder::Feed(std::string_view in, std::string* body,
                                            uint64_t max_body, size_t* used) {
  size_t pos = 0;
  auto finish = [&](Result r) {
    *used = pos;
    return r;
  };
  while (pos < in.size() || state_ == State::kDone) {
    switch (state_) {
      case State::kDone: return finish(Result::kDone);

      case State::kData: {
        size_t n = static_cast<size_t>(std::min<uint64_t>(left_, in.size() - pos));
        body->append(in.data() + pos, n);
        pos += n;
        left_ -= n;
        if (left_ == 0) state_ = State::kDataEnd;
        break;
      }

      case State::kSize:
      case State::kDataEnd:
      case State::kTrailer: {
        size_t lf = in.find('\n', pos);
        size_t end = lf == std::string_view::npos ? in.size() : lf;
        line_.append(in.data() + pos, end - pos);
        if (line_.size() > kMaxLine) return finish(Fail("chunk size or trailer line too long"));
        if (lf == std::string_view::npos) {
          pos = in.size();
          return finish(Result::kNeedMore);
        }
        pos = lf + 1;
        std::string line = std::move(line_);
        line_.clear();
        if (!line.empty() && line.back() == '\r') line.pop_back();

        if (state_ == State::kDataEnd) {
          if (!line.empty()) return finish(Fail("chunk data longer than its size"));
          state_ = State::kSize;
        } else if (state_ == State::kTrailer) {
          if (line.empty()) state_ = State::kDone;  // trailer fields are dropped
        } else {
          std::string_view digits(line);
          digits = digits.substr(0, digits.find(';'));  // chunk extensions
          while (!digits.empty() && (digits.back() == ' ' || digits.back() == '\t'))
            digits.remove_suffix(1);
          if (digits.empty() || digits.size() > 15)
            return finish(
                Fail(fmt::format("malformed chunk size line \"{}\"", line.substr(0, 40))));
          uint64_t size = 0;
          for (char c : digits) {
            int d = HexDigit(c);
            if (d < 0)
              return finish(Fail(fmt::format("malformed chunk size \"{}\"", digits.substr(0, 40))));
            size = size * 16 + static_cast<uint64_t>(d);
          }
          if (body->size() + size > max_body) {
            too_large_ = true;
            return finish(Fail(fmt::format("request body larger than {} bytes", max_body)));
          }
          left_ = size;
          state_ = size == 0 ? State::kTrailer : State::kData;
        }
        break;
      }
    }
  }
  return finish(Result::kNeedMore);
}

}  // namespace kiln::http
