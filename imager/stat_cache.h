#pragma once
// The stat cache: lets a re-capture of an unchanged tree skip reading and
// hashing files, as git's index does. For every entry it remembers the stat
// fields that change whenever the inode may have changed (device, inode,
// size, mtime and ctime in nanoseconds; the kernel sets ctime on every
// change of content, attributes or xattrs) and what the entry had then: a
// file's chunk list, its xattrs, a symlink's target. An entry whose fields
// all match is taken from the cache: no read, no listxattr, no readlink.
//
// Racy entries: a file modified within the same timestamp tick as its
// hashing could keep identical stat fields with new content. So an entry is
// stored only when its mtime and ctime are older than the start of the scan
// that hashed it by more than kRacyWindowNs (many kernel timestamp ticks,
// which are a few milliseconds); a younger file is hashed again next time.
//
// On disk: "KILNSC2\n", then per entry: path, dev, ino, size, mtime_ns,
// ctime_ns, chunk count, chunks (digest, size), xattr count, xattrs (name,
// value), target; numbers are varints, strings length-prefixed (codec.h).
// A damaged cache, or one of another format, is ignored (everything is read
// again), never trusted.

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/status.h"
#include "imager/manifest.h"

namespace kiln::imager {

inline constexpr int64_t kRacyWindowNs = 100'000'000;

struct StatKey {
  uint64_t dev = 0, ino = 0, size = 0;
  int64_t mtime_ns = 0, ctime_ns = 0;
  bool operator==(const StatKey&) const = default;
};

class StatCache {
 public:
  // Loads path; a missing or damaged file gives an empty cache.
  static StatCache Load(const std::string& path);
  // Writes atomically.
  Status Save(const std::string& path) const;

  // What an entry had when its stat fields were key.
  struct Item {
    StatKey key;
    std::vector<Chunk> chunks;  // regular files
    std::vector<Xattr> xattrs;
    std::string target;  // symlinks
  };
  // The item recorded for path when its stat fields are unchanged.
  const Item* Find(const std::string& path, const StatKey& key) const;
  // The chunks recorded for path when its stat fields are unchanged.
  const std::vector<Chunk>* Lookup(const std::string& path, const StatKey& key) const;
  // Records an entry read by a scan that started at scan_start_ns.
  void Record(const std::string& path, Item item, int64_t scan_start_ns);
  void Record(const std::string& path, const StatKey& key, const std::vector<Chunk>& chunks,
              int64_t scan_start_ns) {
    Record(path, Item{key, chunks, {}, {}}, scan_start_ns);
  }
  size_t size() const { return map_.size(); }

 private:
  std::unordered_map<std::string, Item> map_;
};

// Where a capture of source_dir keeps its stat cache by default:
// $XDG_CACHE_HOME/kiln/statcache/<sha256 of the absolute path>, else
// ~/.cache/kiln/..., else /var/cache/kiln/...
std::string DefaultStatCachePath(const std::string& source_dir);

}  // namespace kiln::imager
