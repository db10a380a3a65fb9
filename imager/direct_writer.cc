#include "imager/direct_writer.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <new>

namespace kiln::imager {

void DirectWriter::Free::operator()(char* p) const {
  ::operator delete[](p, std::align_val_t{kAlign});
}

DirectWriter::DirectWriter(int fd, std::string what, PwriteFn pwrite)
    : fd_(fd),
      what_(std::move(what)),
      pwrite_(pwrite),
      buf_(static_cast<char*>(::operator new[](kBufferSize, std::align_val_t{kAlign}))) {
  int flags = ::fcntl(fd_, F_GETFL);
  direct_ = flags >= 0 && ::fcntl(fd_, F_SETFL, flags | O_DIRECT) == 0;
}

// Leaves the flag as it is: after a failure the file is discarded, and
// Finish clears it before the file's attributes are set.
DirectWriter::~DirectWriter() = default;

Status DirectWriter::ClearDirect() {
  direct_ = false;
  int flags = ::fcntl(fd_, F_GETFL);
  if (flags < 0 || ::fcntl(fd_, F_SETFL, flags & ~O_DIRECT) != 0)
    return ErrnoError("fcntl " + what_, errno);
  return Status::Ok();
}

Status DirectWriter::Write(std::string_view data) {
  while (!data.empty()) {
    size_t take = std::min(data.size(), kBufferSize - fill_);
    std::memcpy(buf_.get() + fill_, data.data(), take);
    fill_ += take;
    data.remove_prefix(take);
    if (fill_ == kBufferSize) KILN_RETURN_IF_ERROR(Flush(fill_));
  }
  return Status::Ok();
}

Status DirectWriter::Flush(size_t len) {
  size_t done = 0;
  while (done < len) {
    ssize_t n = pwrite_(fd_, buf_.get() + done, len - done, static_cast<off_t>(offset_ + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EINVAL && direct_) {
      // The filesystem took the flag but not this write (an alignment it
      // wants larger, or a short write that left the offset unaligned):
      // the rest goes through the page cache.
      KILN_RETURN_IF_ERROR(ClearDirect());
      continue;
    }
    if (n <= 0) return ErrnoError("write " + what_, n < 0 ? errno : EIO);
    done += static_cast<size_t>(n);
    if (direct_) direct_bytes_ += static_cast<uint64_t>(n);
  }
  offset_ += len;
  fill_ -= len;
  if (fill_ > 0) std::memmove(buf_.get(), buf_.get() + len, fill_);
  return Status::Ok();
}

Status DirectWriter::Finish() {
  size_t aligned = fill_ / kAlign * kAlign;
  if (aligned > 0) KILN_RETURN_IF_ERROR(Flush(aligned));
  // What is left is shorter than the alignment: through the page cache.
  if (direct_) KILN_RETURN_IF_ERROR(ClearDirect());
  return fill_ > 0 ? Flush(fill_) : Status::Ok();
}

}  // namespace kiln::imager
