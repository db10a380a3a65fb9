#include "pxe/tftp_options.h"

#include <algorithm>
#include <string>

#include "common/strings.h"

namespace kiln::pxe::tftp {

Negotiated Negotiate(const std::vector<Option>& requested, const Limits& limits,
                     std::optional<uint64_t> file_size) {
  Negotiated n;
  n.timeout = limits.default_timeout;
  // Window size depends on the block size: settle blksize first, then
  // answer in the client's order.
  for (const auto& [name, value] : requested) {
    if (name != "blksize") continue;
    auto v = ParseUint(value);
    if (!v || *v < 8) continue;
    n.blksize = static_cast<uint32_t>(std::min<uint64_t>(*v, limits.max_blksize));
  }
  bool blksize_accepted = false;
  for (const auto& [name, value] : requested) {
    auto v = ParseUint(value);
    if (name == "blksize") {
      if (!v || *v < 8) continue;
      blksize_accepted = true;
      n.oack.emplace_back(name, std::to_string(n.blksize));
    } else if (name == "timeout") {
      if (!v || *v < 1 || *v > 255) continue;
      n.timeout = std::chrono::seconds(*v);
      n.client_set_timeout = true;
      n.oack.emplace_back(name, value);
    } else if (name == "tsize") {
      if (!file_size) continue;
      n.tsize = *file_size;
      n.oack.emplace_back(name, std::to_string(*file_size));
    } else if (name == "windowsize") {
      if (!v || *v < 1) continue;
      uint64_t w = std::min<uint64_t>({*v, limits.max_windowsize, 65535});
      uint64_t fit = std::max<uint64_t>(1, limits.max_window_bytes / n.blksize);
      n.windowsize = static_cast<uint32_t>(std::min(w, fit));
      n.oack.emplace_back(name, std::to_string(n.windowsize));
    }
  }
  if (!blksize_accepted) n.blksize = 512;
  return n;
}

}  // namespace kiln::pxe::tftp
