#include "imager/direct_writer.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <new>
#include <system_error>

namespace kiln::imager {

void DirectWriter::Free::operator()(char* p) const {
  ::operator delete[](p, std::align_val_t{kAlign});
}

DirectWriter::DirectWriter(int fd, std::string what, PwriteFn pwrite)
    : fd_(fd), what_(std::move(what)), pwrite_(pwrite) {
  int flags = ::fcntl(fd_, F_GETFL);
  direct_ = flags >= 0 && ::fcntl(fd_, F_SETFL, flags | O_DIRECT) == 0;
  // The second buffer and the helper come with the first full buffer: a
  // file that fits in one needs neither.
  bufs_[0].reset(static_cast<char*>(::operator new[](kBufferSize, std::align_val_t{kAlign})));
}

// Leaves the flag as it is: after a failure the file is discarded, and
// Finish clears it before the file's attributes are set.
DirectWriter::~DirectWriter() {
  if (helper_.joinable()) {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    helper_.join();
  }
}

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
    std::memcpy(bufs_[cur_].get() + fill_, data.data(), take);
    fill_ += take;
    data.remove_prefix(take);
    if (fill_ == kBufferSize) KILN_RETURN_IF_ERROR(Submit());
  }
  return Status::Ok();
}

Status DirectWriter::WriteOut(const char* buf, size_t len, uint64_t offset) {
  size_t done = 0;
  while (done < len) {
    ssize_t n = pwrite_(fd_, buf + done, len - done, static_cast<off_t>(offset + done));
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
  return Status::Ok();
}

Status DirectWriter::Settle() {
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] { return job_ == nullptr; });
  return job_status_;
}

Status DirectWriter::Submit() {
  KILN_RETURN_IF_ERROR(Settle());  // the other buffer is free again
  if (!helper_.joinable() && !no_helper_) {
    try {
      helper_ = std::thread([this] { HelperLoop(); });
    } catch (const std::system_error&) {
      no_helper_ = true;  // no thread to be had: this one writes
    }
  }
  if (no_helper_) {
    KILN_RETURN_IF_ERROR(WriteOut(bufs_[cur_].get(), fill_, offset_));
    offset_ += fill_;
    fill_ = 0;
    return Status::Ok();
  }
  if (!bufs_[1])
    bufs_[1].reset(static_cast<char*>(::operator new[](kBufferSize, std::align_val_t{kAlign})));
  {
    std::lock_guard lock(mu_);
    job_ = bufs_[cur_].get();
    job_len_ = fill_;
    job_offset_ = offset_;
  }
  cv_.notify_all();
  offset_ += fill_;
  fill_ = 0;
  cur_ ^= 1;
  return Status::Ok();
}

// direct_, direct_bytes_ and the file's flags change only here while a job
// is in flight; the caller reads them after Settle.
void DirectWriter::HelperLoop() {
  std::unique_lock lock(mu_);
  for (;;) {
    cv_.wait(lock, [&] { return job_ != nullptr || stop_; });
    if (!job_) return;
    const char* buf = job_;
    size_t len = job_len_;
    uint64_t offset = job_offset_;
    lock.unlock();
    Status s = WriteOut(buf, len, offset);
    lock.lock();
    if (job_status_.ok()) job_status_ = s;
    job_ = nullptr;
    cv_.notify_all();
  }
}

Status DirectWriter::Finish() {
  KILN_RETURN_IF_ERROR(Settle());
  char* buf = bufs_[cur_].get();
  size_t aligned = fill_ / kAlign * kAlign;
  if (aligned > 0) KILN_RETURN_IF_ERROR(WriteOut(buf, aligned, offset_));
  // What is left is shorter than the alignment: through the page cache.
  if (direct_) KILN_RETURN_IF_ERROR(ClearDirect());
  size_t tail = fill_ - aligned;
  if (tail > 0) KILN_RETURN_IF_ERROR(WriteOut(buf + aligned, tail, offset_ + aligned));
  offset_ += fill_;
  fill_ = 0;
  return Status::Ok();
}

}  // namespace kiln::imager
