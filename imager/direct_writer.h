#pragma once
// DirectWriter: writes one file's bytes, in order, with O_DIRECT.
//
// Why: a buffered write copies every byte into a page-cache page the kernel
// must first allocate, and on these VMs allocating and filling fresh pages
// costs 0.4-3 s of system time per GiB (docs/BENCHMARKS.md); a deploy that
// writes a 1 GiB file spent half its CPU there, and an installer then pays
// again to write the dirty pages out at its syncfs. With O_DIRECT the disk
// reads the bytes straight from this buffer. The stream's chunks are of any
// size, so they are gathered into an aligned buffer and written in large
// aligned pieces; the tail that is not a multiple of the alignment is
// written buffered at the end.
//
// Only for large files written whole from the stream (Applier decides): a
// delta's file mixes copied ranges with new chunks, and small files are
// cheaper through the page cache than one device round trip each.
//
// A direct write waits for the device, so a full buffer is written by a
// helper thread while the caller fills the other one: the caller (a
// capture's verifier, a deploy's sink) waits only when the device is two
// buffers behind. A failed background write is returned by the next Write
// or by Finish.
//
// A filesystem that refuses O_DIRECT (fcntl fails, or a write fails with
// EINVAL) gets buffered writes through the same calls; direct_bytes() says
// how much went to the disk directly.

#include <unistd.h>

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "common/status.h"

namespace kiln::imager {

class DirectWriter {
 public:
  static constexpr size_t kAlign = 4096;             // covers 512- and 4096-byte sectors
  static constexpr size_t kBufferSize = 4 << 20;     // one device write
  static constexpr uint64_t kMinFileSize = 8 << 20;  // smaller files stay buffered

  // How bytes reach the file: pwrite(2), or a test's stand-in.
  using PwriteFn = ssize_t (*)(int fd, const void* buf, size_t n, off_t offset);

  // fd: a file opened for writing, nothing written to it yet (its blocks
  // may be reserved); what: its name for errors.
  DirectWriter(int fd, std::string what, PwriteFn pwrite = ::pwrite);
  ~DirectWriter();
  DirectWriter(const DirectWriter&) = delete;
  DirectWriter& operator=(const DirectWriter&) = delete;

  Status Write(std::string_view data);
  // Writes what is buffered and leaves the file buffered again (its
  // attributes and rename follow). Must be called once, last.
  Status Finish();

  // Whether O_DIRECT is set (false from the start where the filesystem
  // refuses it: the caller is better off with plain writes then). This and
  // direct_bytes() may change while a buffer is being written: read them
  // before the first Write or after Finish.
  bool direct() const { return direct_; }
  uint64_t direct_bytes() const { return direct_bytes_; }

 private:
  // Writes buf[0, len) at offset, on whichever thread calls it.
  Status WriteOut(const char* buf, size_t len, uint64_t offset);
  // Hands the full current buffer to the helper and switches buffers.
  Status Submit();
  // Waits for the helper's write in flight; returns its status.
  Status Settle();
  void HelperLoop();
  Status ClearDirect();  // buffered writes from here on

  int fd_;
  std::string what_;
  PwriteFn pwrite_;
  bool direct_ = false;  // O_DIRECT is set on fd_
  uint64_t direct_bytes_ = 0;
  struct Free {
    void operator()(char* p) const;
  };
  std::unique_ptr<char, Free> bufs_[2];
  int cur_ = 0;          // the buffer being filled
  size_t fill_ = 0;      // bytes in it
  uint64_t offset_ = 0;  // of its first byte in the file

  // The helper: one write in flight at most. Fields below under mu_.
  std::thread helper_;
  bool no_helper_ = false;  // the thread could not be started: writes here
  std::mutex mu_;
  std::condition_variable cv_;
  const char* job_ = nullptr;  // the buffer to write, or none
  size_t job_len_ = 0;
  uint64_t job_offset_ = 0;
  bool stop_ = false;
  Status job_status_;
};

}  // namespace kiln::imager
