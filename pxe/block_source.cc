#include "pxe/block_source.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

namespace kiln::pxe {

Result<size_t> FileSource::ReadAt(uint64_t offset, char* buf, size_t len) {
  size_t done = 0;
  while (done < len) {
    ssize_t n = ::pread(fd_.get(), buf + done, len - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError(fmt::format("read {} at {}", name_, offset + done), errno);
    }
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  return done;
}

Result<size_t> MemorySource::ReadAt(uint64_t offset, char* buf, size_t len) {
  if (offset >= data_.size()) return size_t{0};
  size_t n = std::min<uint64_t>(len, data_.size() - offset);
  std::memcpy(buf, data_.data() + offset, n);
  return n;
}

Result<std::string> ReadAllFrom(BlockSource& src, uint64_t max) {
  std::string out;
  char buf[65536];
  for (;;) {
    KILN_ASSIGN_OR_RETURN(size_t n, src.ReadAt(out.size(), buf, sizeof buf));
    if (n == 0) return out;
    if (out.size() + n > max) return TooLarge(fmt::format("larger than {} bytes", max));
    out.append(buf, n);
  }
}

std::string NetasciiEncode(std::string_view text) {
  std::string out;
  out.reserve(text.size() + text.size() / 16);
  for (char c : text) {
    if (c == '\n') {
      out += "\r\n";
    } else if (c == '\r') {
      out.push_back('\r');
      out.push_back('\0');
    } else {
      out.push_back(c);
    }
  }
  return out;
}

}  // namespace kiln::pxe
