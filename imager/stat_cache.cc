#include "imager/stat_cache.h"

#include <cstdlib>
#include <filesystem>

#include "common/file_util.h"
#include "common/hash.h"
#include "imager/chunker.h"
#include "imager/codec.h"
#include "imager/path_util.h"

namespace kiln::imager {
namespace {
constexpr std::string_view kMagic = "KILNSC2\n";
constexpr size_t kMaxXattrBytes = 64 * 1024;  // the kernel's limit for a value
}  // namespace

StatCache StatCache::Load(const std::string& path) {
  StatCache c;
  auto text = ReadFile(path);
  if (!text.ok() || text->substr(0, kMagic.size()) != kMagic) return c;
  ByteReader r(std::string_view(*text).substr(kMagic.size()));
  c.map_.reserve(text->size() / 64);  // about one entry per 64 bytes: no rehashing
  while (r.ok() && !r.done()) {
    std::string p;
    Item it;
    uint64_t mt, ct, n;
    if (!r.Bytes(kMaxPathLen, &p) || !r.Varint(&it.key.dev) || !r.Varint(&it.key.ino) ||
        !r.Varint(&it.key.size) || !r.Varint(&mt) || !r.Varint(&ct) ||
        !r.Bounded(r.remaining() / 33, &n))
      return StatCache();
    it.key.mtime_ns = static_cast<int64_t>(mt);
    it.key.ctime_ns = static_cast<int64_t>(ct);
    it.chunks.resize(n);
    uint64_t sum = 0;
    for (auto& ch : it.chunks) {
      if (!r.Digest(&ch.digest) || !r.Bounded(kMaxObjectSize, &ch.size)) return StatCache();
      sum += ch.size;
    }
    // Only a file has chunks, and they add up to its size.
    if (n > 0 && sum != it.key.size) return StatCache();
    uint64_t nx;
    if (!r.Bounded(r.remaining() / 2, &nx)) return StatCache();
    it.xattrs.resize(nx);
    for (auto& x : it.xattrs)
      if (!r.Bytes(kMaxXattrBytes, &x.name) || !r.Bytes(kMaxXattrBytes, &x.value))
        return StatCache();
    if (!r.Bytes(kMaxPathLen, &it.target)) return StatCache();
    c.map_[std::move(p)] = std::move(it);
  }
  return r.ok() ? c : StatCache();
}

Status StatCache::Save(const std::string& path) const {
  ByteWriter w;
  w.Raw(kMagic);
  for (const auto& [p, it] : map_) {
    w.Bytes(p);
    w.Varint(it.key.dev);
    w.Varint(it.key.ino);
    w.Varint(it.key.size);
    w.Varint(static_cast<uint64_t>(it.key.mtime_ns));
    w.Varint(static_cast<uint64_t>(it.key.ctime_ns));
    w.Varint(it.chunks.size());
    for (const auto& ch : it.chunks) {
      w.Digest(ch.digest);
      w.Varint(ch.size);
    }
    w.Varint(it.xattrs.size());
    for (const auto& x : it.xattrs) {
      w.Bytes(x.name);
      w.Bytes(x.value);
    }
    w.Bytes(it.target);
  }
  std::filesystem::path fp(path);
  if (fp.has_parent_path()) KILN_RETURN_IF_ERROR(MakeDirs(fp.parent_path().string(), 0700));
  return WriteFileAtomic(path, w.str(), 0600);
}

const StatCache::Item* StatCache::Find(const std::string& path, const StatKey& key) const {
  auto it = map_.find(path);
  if (it == map_.end() || !(it->second.key == key)) return nullptr;
  return &it->second;
}

const std::vector<Chunk>* StatCache::Lookup(const std::string& path, const StatKey& key) const {
  const Item* it = Find(path, key);
  return it ? &it->chunks : nullptr;
}

void StatCache::Record(const std::string& path, Item item, int64_t scan_start_ns) {
  if (item.key.mtime_ns > scan_start_ns - kRacyWindowNs ||
      item.key.ctime_ns > scan_start_ns - kRacyWindowNs) {
    map_.erase(path);
    return;
  }
  map_[path] = std::move(item);
}

std::string DefaultStatCachePath(const std::string& source_dir) {
  std::error_code ec;
  std::string abs = std::filesystem::absolute(source_dir, ec).lexically_normal().string();
  std::string name = Sha256Hex(abs);
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x)
    return std::string(x) + "/kiln/statcache/" + name;
  if (const char* h = std::getenv("HOME"); h && *h)
    return std::string(h) + "/.cache/kiln/statcache/" + name;
  return "/var/cache/kiln/statcache/" + name;
}

}  // namespace kiln::imager
