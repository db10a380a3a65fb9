#pragma once
// The stat cache: lets a re-capture of an unchanged tree skip reading and
// hashing files, as git's index does. For every regular file it remembers
// the stat fields that change whenever the content may have changed (device,
// inode, size, mtime and ctime in nanoseconds) and the chunk list that the
// content had then. A file whose fields all match is taken from the cache.
//
// Racy entries: a file modified within the same timestamp tick as its
// hashing could keep identical stat fields with new content. So an entry is
// stored only when its mtime and ctime are older than the start of the scan
// that hashed it by more than kRacyWindowNs (many kernel timestamp ticks,
// which are a few milliseconds); a younger file is hashed again next time.
//
// On disk: "KILNSC1\n", then per file: path, dev, ino, size, mtime_ns,
// ctime_ns, chunk count, chunks (digest, size); all varints (codec.h).
// A damaged cache is ignored (everything is hashed again), never trusted.

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

  // The chunks recorded for path when its stat fields are unchanged.
  const std::vector<Chunk>* Lookup(const std::string& path, const StatKey& key) const;
  // Records a file hashed by a scan that started at scan_start_ns.
  void Record(const std::string& path, const StatKey& key, const std::vector<Chunk>& chunks,
              int64_t scan_start_ns);
  size_t size() const { return map_.size(); }

 private:
  struct Item {
    StatKey key;
    std::vector<Chunk> chunks;
  };
  std::unordered_map<std::string, Item> map_;
};

// Where a capture of source_dir keeps its stat cache by default:
// $XDG_CACHE_HOME/kiln/statcache/<sha256 of the absolute path>, else
// ~/.cache/kiln/..., else /var/cache/kiln/...
std::string DefaultStatCachePath(const std::string& source_dir);

}  // namespace kiln::imager
