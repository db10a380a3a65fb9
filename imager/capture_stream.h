#pragma once
// CaptureStreamer: a first capture's objects, sent while its tree is still
// being read.
//
// Manifest first (capture.h) costs a first capture two passes over its
// bytes: the scan reads and hashes every file, the upload reads the
// missing ones again, and the target waits idle through the scan. Here the
// scanner hands each object's bytes over as soon as they are hashed
// (ScanOptions::on_content); they are gathered into batches, the target is
// asked which of a batch's objects it lacks (CaptureTarget::Offer), and
// those are compressed and sent by concurrent_puts() senders, while the
// scan goes on. The manifest then goes last, to the capture Open started,
// and normally finds nothing missing.
//
// A large file's chunks stay in the scan's blocks, which the batch keeps
// until it is sent; a small file's bytes are copied into the batch (the
// scanner reuses its buffer for the next file). Bytes that do not compress
// go out as stored frames in pieces (stored_frame.h), the bytes themselves
// never copied in this process. Add waits while kMaxQueued batches wait to
// be sent, so memory stays a few batches whatever the tree's size.

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/hash.h"
#include "common/status.h"
#include "imager/capture.h"
#include "imager/object_store.h"
#include "imager/zstd_util.h"

namespace kiln::imager {

class CaptureStreamer {
 public:
  static constexpr uint64_t kBatchBytes = 4 << 20;
  // A batch of tiny files is cut by count: its offer (32 bytes an object)
  // must stay within the server's 1 MiB for one.
  static constexpr size_t kMaxBatchObjects = 16384;
  static constexpr size_t kMaxQueued = 2;

  // target: opened (CaptureTarget::Open returned true).
  CaptureStreamer(CaptureTarget* target, const CaptureOptions& opts);
  ~CaptureStreamer();
  CaptureStreamer(const CaptureStreamer&) = delete;
  CaptureStreamer& operator=(const CaptureStreamer&) = delete;

  // From any thread, with an object's bytes as they were hashed and, when
  // they may be kept, their owner (ContentFn). An object seen before is
  // skipped. After a failure it only returns.
  void Add(const Sha256Digest& digest, std::string_view bytes,
           const std::shared_ptr<const std::string>& owner);
  // Sends what is left and waits for the senders; the first failure.
  // Counts what was sent into report (objects_sent, bytes_sent).
  Status Finish(CaptureReport* report);

 private:
  struct Object {
    Sha256Digest digest;
    std::string_view kept;  // in one of owners, or empty: at offset in copies
    size_t offset = 0, size = 0;
  };
  struct Batch {
    std::string copies;  // copied objects' bytes, one after another
    std::vector<std::shared_ptr<const std::string>> owners;  // kept buffers
    std::vector<Object> objects;
    uint64_t bytes = 0;
  };
  void Sender();
  Status Send(const Batch& batch, Compressor& comp, uint64_t* objects, uint64_t* bytes);

  CaptureTarget* target_;
  const CaptureOptions& opts_;
  std::mutex mu_;
  std::condition_variable cv_;
  DigestSet seen_;
  Batch filling_;
  std::deque<Batch> queue_;
  std::vector<std::string> spare_copies_;  // sent batches' buffers, for reuse
  bool closing_ = false;
  Status error_;
  uint64_t objects_sent_ = 0, bytes_sent_ = 0;
  std::vector<std::thread> senders_;
};

}  // namespace kiln::imager
