#pragma once
// Capturing a tar or cpio archive (plain, gzip, xz, zstd, bzip2: whatever
// libarchive reads) into a manifest.
//
// Member names are normalised and checked (path_util.h): absolute names,
// ".." components and duplicates are refused, naming the member; members
// below a symlink or a file are refused by manifest validation, so an
// archive can never smuggle a write through a link. Parent directories the
// archive omits are added (mode 0755, owner 0:0, mtime 0). POSIX ACLs that
// libarchive reports as ACL entries are stored as the kernel's
// system.posix_acl_* xattrs, so they deploy like captured ones.

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "common/status.h"
#include "imager/manifest.h"

namespace kiln::imager {

struct ArchiveScanOptions {
  bool allow_devices = true;
  std::function<void(uint64_t bytes, uint64_t files)> progress;
};

// Reads the archive at path ("-" is stdin). Every chunk's bytes are handed to
// on_chunk (possibly more than once for repeated content) as they are read.
using ChunkFn = std::function<Status(const Sha256Digest& digest, std::string_view bytes)>;
Result<Manifest> ScanArchive(const std::string& path, const ArchiveScanOptions& opts,
                             const ChunkFn& on_chunk);

// The system.posix_acl_access / _default xattr value for ACL entries given
// as (tag, perm, id) with libarchive's tag numbers; "" for an ACL that only
// repeats the mode bits.
struct AclEntry {
  int tag;
  int perm;
  int id;
};
std::string AclToXattr(std::vector<AclEntry> entries, bool is_default);

}  // namespace kiln::imager
