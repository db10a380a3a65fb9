#pragma once
// A manifest: the sorted entries of a filesystem tree, with everything
// needed to rebuild it exactly. Its encoding is canonical (one tree, one
// byte string), and the SHA-256 of that encoding names the version: the same
// content captured twice gives the same digest. The byte layout is in
// docs/IMAGE_FORMAT.md; codec.h holds the primitives.
//
// Invariants of a valid manifest (ValidateManifest checks them all, and
// DecodeManifest never returns a manifest that breaks one):
//   - entries are sorted by path, bytewise, without duplicates; the first is
//     the root "" and it is a directory;
//   - every path passes ValidateEntryPath, and its parent is an earlier
//     directory entry (so no path can pass through a symlink or a file);
//   - a hard link names an earlier entry that is neither a directory nor a
//     hard link; it carries no attributes of its own (the inode's are those
//     of the entry it names);
//   - a file's chunk sizes add up to its size, each chunk 1..kMaxObjectSize.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/hash.h"
#include "common/json.h"
#include "common/status.h"

namespace kiln::imager {

// Numbers are part of the on-disk format: never renumber.
enum class EntryType : uint8_t {
  kDir = 1,
  kFile = 2,
  kSymlink = 3,
  kHardlink = 4,
  kCharDev = 5,
  kBlockDev = 6,
  kFifo = 7,
  kSocket = 8,
};

std::string_view EntryTypeName(EntryType t);  // "dir", "file", ...

struct Chunk {
  Sha256Digest digest{};
  uint64_t size = 0;
  bool operator==(const Chunk&) const = default;
};

struct Xattr {
  std::string name;   // "security.capability", "system.posix_acl_access", "user.x"
  std::string value;  // raw bytes as the kernel returns them
  bool operator==(const Xattr&) const = default;
};

struct Entry {
  std::string path;  // "" is the root
  EntryType type = EntryType::kFile;
  uint32_t mode = 0;  // permission bits including setuid, setgid, sticky (07777)
  uint32_t uid = 0;
  uint32_t gid = 0;
  int64_t mtime_sec = 0;
  uint32_t mtime_nsec = 0;
  uint64_t size = 0;          // file: content bytes
  std::vector<Chunk> chunks;  // file: content, in order (empty when size is 0)
  std::string target;         // symlink: its target; hard link: the path it links to
  uint32_t dev_major = 0;     // char and block devices
  uint32_t dev_minor = 0;
  std::vector<Xattr> xattrs;  // sorted by name

  bool operator==(const Entry&) const = default;
  bool SameContent(const Entry& o) const;   // type, size, chunks, target, device numbers
  bool SameMetadata(const Entry& o) const;  // mode, owner, mtime, xattrs
};

struct Manifest {
  std::vector<Entry> entries;

  // Binary search by path; nullptr when absent.
  const Entry* Find(std::string_view path) const;
  uint64_t TotalFileBytes() const;
};

inline constexpr std::string_view kManifestMagic = "KILNMAN\n";
inline constexpr uint64_t kManifestFormat = 1;

// Appends one entry in the manifest encoding (file content as chunks).
class ByteWriter;
class ByteReader;
void EncodeEntryHeader(ByteWriter& w, const Entry& e);
void EncodeEntryTail(ByteWriter& w, const Entry& e);

std::string EncodeManifest(const Manifest& m);
// Decodes and validates; errors are kCorruption naming the entry index and
// path and what is wrong.
Result<Manifest> DecodeManifest(std::string_view bytes);
Status ValidateManifest(const Manifest& m);
// Validates one entry on its own (no ordering or parent rules).
Status ValidateEntry(const Entry& e);

// Sorts entries into manifest order (root first, then bytewise by path).
void SortEntries(std::vector<Entry>* entries);

// For people and --json: the entry's attributes with readable values.
Json EntryToJson(const Entry& e);
std::string ModeString(const Entry& e);  // "drwxr-xr-x", "-rwsr-xr-x", ...

}  // namespace kiln::imager
