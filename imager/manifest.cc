#include "imager/manifest.h"

#include <fmt/format.h>

#include <algorithm>
#include <unordered_map>

#include "common/strings.h"
#include "imager/chunker.h"
#include "imager/codec.h"
#include "imager/path_util.h"

namespace kiln::imager {
namespace {

constexpr uint64_t kMaxEntries = 50'000'000;
constexpr uint64_t kMaxXattrs = 1024;
constexpr size_t kMaxXattrValue = 64 * 1024;
constexpr uint64_t kMaxFileSize = 1ULL << 50;

std::string Where(size_t index, std::string_view path) {
  return fmt::format("manifest entry {} ({})", index, DisplayPath(path));
}

}  // namespace

std::string_view EntryTypeName(EntryType t) {
  switch (t) {
    case EntryType::kDir: return "dir";
    case EntryType::kFile: return "file";
    case EntryType::kSymlink: return "symlink";
    case EntryType::kHardlink: return "hardlink";
    case EntryType::kCharDev: return "chardev";
    case EntryType::kBlockDev: return "blockdev";
    case EntryType::kFifo: return "fifo";
    case EntryType::kSocket: return "socket";
  }
  return "unknown";
}

bool Entry::SameContent(const Entry& o) const {
  return type == o.type && size == o.size && chunks == o.chunks && target == o.target &&
         dev_major == o.dev_major && dev_minor == o.dev_minor;
}

bool Entry::SameMetadata(const Entry& o) const {
  return mode == o.mode && uid == o.uid && gid == o.gid && mtime_sec == o.mtime_sec &&
         mtime_nsec == o.mtime_nsec && xattrs == o.xattrs;
}

const Entry* Manifest::Find(std::string_view path) const {
  auto it = std::lower_bound(entries.begin(), entries.end(), path,
                             [](const Entry& e, std::string_view p) { return e.path < p; });
  if (it == entries.end() || it->path != path) return nullptr;
  return &*it;
}

uint64_t Manifest::TotalFileBytes() const {
  uint64_t n = 0;
  for (const auto& e : entries) n += e.type == EntryType::kFile ? e.size : 0;
  return n;
}

void SortEntries(std::vector<Entry>* entries) {
  std::sort(entries->begin(), entries->end(),
            [](const Entry& a, const Entry& b) { return a.path < b.path; });
}

void EncodeEntryHeader(ByteWriter& w, const Entry& e) {
  w.Bytes(e.path);
  w.U8(static_cast<uint8_t>(e.type));
  w.Varint(e.mode);
  w.Varint(e.uid);
  w.Varint(e.gid);
  w.Svarint(e.mtime_sec);
  w.Varint(e.mtime_nsec);
}

void EncodeEntryTail(ByteWriter& w, const Entry& e) {
  switch (e.type) {
    case EntryType::kSymlink:
    case EntryType::kHardlink: w.Bytes(e.target); break;
    case EntryType::kCharDev:
    case EntryType::kBlockDev:
      w.Varint(e.dev_major);
      w.Varint(e.dev_minor);
      break;
    default: break;
  }
  w.Varint(e.xattrs.size());
  for (const auto& x : e.xattrs) {
    w.Bytes(x.name);
    w.Bytes(x.value);
  }
}

namespace {

void EncodeEntry(ByteWriter& w, const Entry& e) {
  EncodeEntryHeader(w, e);
  if (e.type == EntryType::kFile) {
    w.Varint(e.size);
    w.U8(0);  // flags: none in a manifest
    w.Varint(e.chunks.size());
    for (const auto& c : e.chunks) {
      w.U8(0);  // piece kind: chunk
      w.Digest(c.digest);
      w.Varint(c.size);
    }
  }
  EncodeEntryTail(w, e);
}

bool DecodeEntry(ByteReader& r, Entry* e) {
  uint8_t type;
  uint64_t mode, uid, gid, nsec;
  if (!r.Bytes(kMaxPathLen, &e->path) || !r.U8(&type) || !r.Bounded(07777, &mode) ||
      !r.Bounded(UINT32_MAX, &uid) || !r.Bounded(UINT32_MAX, &gid) || !r.Svarint(&e->mtime_sec) ||
      !r.Bounded(999'999'999, &nsec))
    return false;
  if (type < 1 || type > 8) return false;
  e->type = static_cast<EntryType>(type);
  e->mode = static_cast<uint32_t>(mode);
  e->uid = static_cast<uint32_t>(uid);
  e->gid = static_cast<uint32_t>(gid);
  e->mtime_nsec = static_cast<uint32_t>(nsec);
  switch (e->type) {
    case EntryType::kFile: {
      uint8_t flags;
      uint64_t n;
      if (!r.Bounded(kMaxFileSize, &e->size) || !r.U8(&flags) || flags != 0) return false;
      // Each chunk takes at least 34 bytes: bound the count by what is left.
      if (!r.Bounded(r.remaining() / 34, &n)) return false;
      e->chunks.resize(n);
      for (auto& c : e->chunks) {
        uint8_t kind;
        if (!r.U8(&kind) || kind != 0 || !r.Digest(&c.digest) ||
            !r.Bounded(kMaxObjectSize, &c.size))
          return false;
      }
      break;
    }
    case EntryType::kSymlink:
    case EntryType::kHardlink:
      if (!r.Bytes(kMaxPathLen, &e->target)) return false;
      break;
    case EntryType::kCharDev:
    case EntryType::kBlockDev: {
      uint64_t ma, mi;
      if (!r.Bounded(UINT32_MAX, &ma) || !r.Bounded(UINT32_MAX, &mi)) return false;
      e->dev_major = static_cast<uint32_t>(ma);
      e->dev_minor = static_cast<uint32_t>(mi);
      break;
    }
    default: break;
  }
  uint64_t nx;
  if (!r.Bounded(kMaxXattrs, &nx)) return false;
  e->xattrs.resize(nx);
  for (auto& x : e->xattrs)
    if (!r.Bytes(kMaxNameLen, &x.name) || !r.Bytes(kMaxXattrValue, &x.value)) return false;
  return true;
}

}  // namespace

std::string EncodeManifest(const Manifest& m) {
  ByteWriter w;
  w.Raw(kManifestMagic);
  w.Varint(kManifestFormat);
  w.Varint(m.entries.size());
  for (const auto& e : m.entries) EncodeEntry(w, e);
  return w.Take();
}

Result<Manifest> DecodeManifest(std::string_view bytes) {
  if (bytes.size() < kManifestMagic.size() ||
      bytes.substr(0, kManifestMagic.size()) != kManifestMagic)
    return Corruption("manifest: bad magic (not a kiln manifest)");
  ByteReader r(bytes.substr(kManifestMagic.size()));
  uint64_t format, count;
  if (!r.Varint(&format)) return Corruption("manifest: truncated header");
  if (format != kManifestFormat)
    return Corruption(fmt::format("manifest: format {} is not supported (this kiln reads {})",
                                  format, kManifestFormat));
  // Every entry takes at least 8 bytes.
  if (!r.Bounded(std::min<uint64_t>(kMaxEntries, r.remaining() / 8 + 1), &count))
    return Corruption("manifest: bad entry count");
  Manifest m;
  m.entries.resize(count);
  for (size_t i = 0; i < count; ++i) {
    if (!DecodeEntry(r, &m.entries[i]))
      return Corruption(fmt::format("manifest entry {}: truncated or malformed at byte {}", i,
                                    kManifestMagic.size() + r.pos()));
  }
  if (!r.done())
    return Corruption(
        fmt::format("manifest: {} unexpected bytes after the last entry", r.remaining()));
  KILN_RETURN_IF_ERROR(ValidateManifest(m));
  return m;
}

Status ValidateEntry(const Entry& e) {
  if (Status s = ValidateEntryPath(e.path); !s.ok()) return s;
  if (e.mode > 07777)
    return InvalidArgument(fmt::format("mode {:o} has bits beyond 07777", e.mode));
  if (e.mtime_nsec > 999'999'999) return InvalidArgument("mtime nanoseconds out of range");
  std::string_view prev;
  for (size_t i = 0; i < e.xattrs.size(); ++i) {
    const auto& x = e.xattrs[i];
    if (x.name.empty() || x.name.size() > kMaxNameLen || x.name.find('\0') != std::string::npos)
      return InvalidArgument("bad xattr name");
    if (i > 0 && x.name <= prev)
      return InvalidArgument(fmt::format("xattr \"{}\" is out of order or repeated", x.name));
    if (x.value.size() > kMaxXattrValue) return InvalidArgument("xattr value too large");
    prev = x.name;
  }
  if (e.type != EntryType::kFile && (e.size != 0 || !e.chunks.empty()))
    return InvalidArgument("only files have content");
  bool has_target = e.type == EntryType::kSymlink || e.type == EntryType::kHardlink;
  if (!has_target && !e.target.empty()) return InvalidArgument("only links have a target");
  bool is_dev = e.type == EntryType::kCharDev || e.type == EntryType::kBlockDev;
  if (!is_dev && (e.dev_major || e.dev_minor))
    return InvalidArgument("only devices have device numbers");
  switch (e.type) {
    case EntryType::kFile: {
      uint64_t sum = 0;
      for (const auto& c : e.chunks) {
        if (c.size == 0 || c.size > kMaxObjectSize)
          return InvalidArgument(
              fmt::format("chunk of {} bytes (allowed 1..{})", c.size, kMaxObjectSize));
        sum += c.size;
      }
      if (sum != e.size)
        return InvalidArgument(
            fmt::format("chunks add up to {} bytes but the size is {}", sum, e.size));
      break;
    }
    case EntryType::kSymlink:
      if (e.target.empty() || e.target.size() > kMaxPathLen ||
          e.target.find('\0') != std::string::npos)
        return InvalidArgument("bad symlink target");
      break;
    case EntryType::kHardlink:
      if (Status s = ValidateEntryPath(e.target); !s.ok() || e.target.empty())
        return InvalidArgument("hard link target: " +
                               (s.ok() ? std::string("empty") : s.message()));
      if (e.mode || e.uid || e.gid || e.mtime_sec || e.mtime_nsec || !e.xattrs.empty())
        return InvalidArgument("a hard link carries no attributes of its own");
      break;
    default: break;
  }
  if (e.path.empty() && e.type != EntryType::kDir)
    return InvalidArgument("the root must be a directory");
  return Status::Ok();
}

Status ValidateManifest(const Manifest& m) {
  if (m.entries.empty() || !m.entries[0].path.empty())
    return Corruption("manifest: the first entry must be the root directory");
  // Path -> type of every entry so far (parents and hard-link targets must
  // come earlier, which sorted order guarantees for valid input).
  std::unordered_map<std::string_view, EntryType> seen;
  seen.reserve(m.entries.size());
  for (size_t i = 0; i < m.entries.size(); ++i) {
    const Entry& e = m.entries[i];
    if (Status s = ValidateEntry(e); !s.ok())
      return Corruption(Where(i, e.path) + ": " + s.message());
    if (i > 0) {
      if (e.path <= m.entries[i - 1].path)
        return Corruption(Where(i, e.path) + (e.path == m.entries[i - 1].path
                                                  ? ": duplicate path"
                                                  : ": entries are not sorted by path"));
      auto parent = seen.find(ParentPath(e.path));
      if (parent == seen.end())
        return Corruption(Where(i, e.path) + ": parent directory is missing");
      if (parent->second != EntryType::kDir)
        return Corruption(Where(i, e.path) + fmt::format(": parent {} is a {}, not a directory",
                                                         DisplayPath(parent->first),
                                                         EntryTypeName(parent->second)));
    }
    if (e.type == EntryType::kHardlink) {
      auto t = seen.find(e.target);
      if (t == seen.end())
        return Corruption(Where(i, e.path) + ": hard link to " + DisplayPath(e.target) +
                          ", which is not an earlier entry");
      if (t->second == EntryType::kDir || t->second == EntryType::kHardlink)
        return Corruption(Where(i, e.path) + ": hard link to a " +
                          std::string(EntryTypeName(t->second)));
    }
    seen.emplace(e.path, e.type);
  }
  return Status::Ok();
}

std::string ModeString(const Entry& e) {
  char t = '-';
  switch (e.type) {
    case EntryType::kDir: t = 'd'; break;
    case EntryType::kSymlink: t = 'l'; break;
    case EntryType::kHardlink: t = 'h'; break;
    case EntryType::kCharDev: t = 'c'; break;
    case EntryType::kBlockDev: t = 'b'; break;
    case EntryType::kFifo: t = 'p'; break;
    case EntryType::kSocket: t = 's'; break;
    default: break;
  }
  std::string s(10, '-');
  s[0] = t;
  const char* rwx = "rwxrwxrwx";
  for (int i = 0; i < 9; ++i)
    if (e.mode & (0400 >> i)) s[1 + i] = rwx[i];
  if (e.mode & 04000) s[3] = (e.mode & 0100) ? 's' : 'S';
  if (e.mode & 02000) s[6] = (e.mode & 0010) ? 's' : 'S';
  if (e.mode & 01000) s[9] = (e.mode & 0001) ? 't' : 'T';
  return s;
}

Json EntryToJson(const Entry& e) {
  Json j = {{"path", DisplayPath(e.path)}, {"type", EntryTypeName(e.type)}};
  if (e.type == EntryType::kHardlink) {
    j["target"] = DisplayPath(e.target);
    return j;
  }
  j["mode"] = fmt::format("{:04o}", e.mode);
  j["uid"] = e.uid;
  j["gid"] = e.gid;
  j["mtime"] = fmt::format("{}.{:09d}", e.mtime_sec, e.mtime_nsec);
  if (e.type == EntryType::kFile) {
    j["size"] = e.size;
    if (e.chunks.size() == 1) j["digest"] = ToHex(e.chunks[0].digest);
    if (e.chunks.size() > 1) j["chunks"] = e.chunks.size();
  }
  if (e.type == EntryType::kSymlink) j["target"] = e.target;
  if (e.type == EntryType::kCharDev || e.type == EntryType::kBlockDev)
    j["rdev"] = fmt::format("{}:{}", e.dev_major, e.dev_minor);
  if (!e.xattrs.empty()) {
    Json x = Json::object();
    for (const auto& a : e.xattrs) x[a.name] = HexEncode(a.value);
    j["xattrs"] = x;
  }
  return j;
}

}  // namespace kiln::imager
