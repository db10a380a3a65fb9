#pragma once
// Where a TFTP transfer's bytes come from: a file read with pread(2) (so
// that any block can be read again for a retransmission and a file that
// is replaced or truncated while being served cannot crash the server, as
// it could with mmap), or a buffer rendered in memory (boot configs).
//
// Thread safety: a BlockSource is used by one transfer on one thread.

#include <cstdint>
#include <memory>
#include <string>

#include "common/file_util.h"
#include "common/status.h"

namespace kiln::pxe {

class BlockSource {
 public:
  virtual ~BlockSource() = default;
  // Reads up to len bytes at offset into buf; fewer only at the end.
  virtual Result<size_t> ReadAt(uint64_t offset, char* buf, size_t len) = 0;
};

class FileSource : public BlockSource {
 public:
  FileSource(UniqueFd fd, std::string name) : fd_(std::move(fd)), name_(std::move(name)) {}
  Result<size_t> ReadAt(uint64_t offset, char* buf, size_t len) override;

 private:
  UniqueFd fd_;
  std::string name_;
};

class MemorySource : public BlockSource {
 public:
  explicit MemorySource(std::string data) : data_(std::move(data)) {}
  Result<size_t> ReadAt(uint64_t offset, char* buf, size_t len) override;
  const std::string& data() const { return data_; }

 private:
  std::string data_;
};

// Reads a whole source (at most max bytes; more is kTooLarge).
Result<std::string> ReadAllFrom(BlockSource& src, uint64_t max);

// netascii (RFC 764 as used by RFC 1350): LF becomes CR LF, a bare CR
// becomes CR NUL.
std::string NetasciiEncode(std::string_view text);

}  // namespace kiln::pxe
