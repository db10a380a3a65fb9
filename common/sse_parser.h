#pragma once
// Reads Server-Sent Events (the coordination watch stream, /api/v1/watch)
// out of a byte stream as it arrives: `kiln coord watch` and `kiln watch`.

#include <string>
#include <string_view>

namespace kiln {

class SseParser {
 public:
  struct Event {
    std::string id, type, data;
  };
  // Feeds bytes; calls on_event for each complete event and on_comment for
  // each comment line. Returns false when a callback asks to stop.
  template <typename OnEvent, typename OnComment>
  bool Feed(std::string_view bytes, OnEvent on_event, OnComment on_comment) {
    buf_.append(bytes);
    size_t start = 0;
    for (;;) {
      size_t nl = buf_.find('\n', start);
      if (nl == std::string::npos) break;
      std::string_view line(buf_.data() + start, nl - start);
      start = nl + 1;
      if (line.empty()) {
        if (!cur_.type.empty() || !cur_.data.empty()) {
          Event e = std::move(cur_);
          cur_ = {};
          if (!on_event(e)) {
            buf_.erase(0, start);
            return false;
          }
        }
        continue;
      }
      if (line[0] == ':') {
        on_comment(line.substr(1));
        continue;
      }
      size_t colon = line.find(':');
      std::string_view field = line.substr(0, colon);
      std::string_view value = colon == std::string_view::npos ? "" : line.substr(colon + 1);
      if (!value.empty() && value[0] == ' ') value.remove_prefix(1);
      if (field == "id") cur_.id = value;
      if (field == "event") cur_.type = value;
      if (field == "data") {
        if (!cur_.data.empty()) cur_.data += '\n';
        cur_.data += value;
      }
    }
    buf_.erase(0, start);
    return true;
  }

 private:
  std::string buf_;
  Event cur_;
};

}  // namespace kiln
