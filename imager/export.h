#pragma once
// Writes a full image stream out as an archive (pax tar, compressed by the
// file name: .tar.zst, .tar.gz, .tar.xz or plain .tar) with libarchive,
// keeping owners, modes, mtimes, xattrs, hard links and device numbers, so
// `tar --xattrs -xpf` or `kiln image capture --from-tar` rebuild the tree.
// Sockets are left out: tar has no way to hold them.

#include <memory>
#include <string>

#include "common/status.h"
#include "imager/stream.h"

namespace kiln::imager {

class ArchiveExportSink : public StreamSink {
 public:
  // path "-" writes to stdout (zstd-compressed). The compression follows
  // format_name's extension (default: path's).
  static Result<std::unique_ptr<ArchiveExportSink>> Open(const std::string& path,
                                                         const std::string& format_name = "");
  ~ArchiveExportSink() override;

  Status OnHeader(const StreamHeader& h) override;
  Status OnEntry(const StreamEntry& e) override;
  Status OnChunk(const Sha256Digest& digest, std::string_view data) override;
  Status OnDelete(const std::string& path) override;
  Status OnEnd(const StreamCounts& counts) override;

  uint64_t entries() const { return entries_; }
  // Sockets have no tar representation; they are left out (as tar does).
  uint64_t skipped_sockets() const { return skipped_sockets_; }

 private:
  ArchiveExportSink() = default;
  void* archive_ = nullptr;
  std::string path_;
  uint64_t entries_ = 0;
  uint64_t skipped_sockets_ = 0;
};

}  // namespace kiln::imager
