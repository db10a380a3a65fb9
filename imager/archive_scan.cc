#include "imager/archive_scan.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <memory>
#include <set>

#include "common/libarchive_api.h"
#include "imager/chunker.h"
#include "imager/path_util.h"
#include "imager/scan.h"

namespace kiln::imager {
namespace {

struct ArchiveCloser {
  void operator()(archive* a) const { Archive().archive_read_free(a); }
};

void PutLe(std::string* out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

Status ArchiveError(archive* a, std::string_view where) {
  const char* msg = Archive().archive_error_string(a);
  return Corruption(fmt::format("{}: {}", where, msg ? msg : "unreadable archive"));
}

}  // namespace

std::string AclToXattr(std::vector<AclEntry> entries, bool is_default) {
  // Kernel tags (linux/posix_acl.h) for libarchive's.
  auto kernel_tag = [](int tag) -> int {
    switch (tag) {
      case ARCHIVE_ENTRY_ACL_USER_OBJ: return 0x01;
      case ARCHIVE_ENTRY_ACL_USER: return 0x02;
      case ARCHIVE_ENTRY_ACL_GROUP_OBJ: return 0x04;
      case ARCHIVE_ENTRY_ACL_GROUP: return 0x08;
      case ARCHIVE_ENTRY_ACL_MASK: return 0x10;
      case ARCHIVE_ENTRY_ACL_OTHER: return 0x20;
      default: return 0;
    }
  };
  std::vector<std::tuple<int, uint32_t, int>> k;
  bool extended = false;
  for (const auto& e : entries) {
    int t = kernel_tag(e.tag);
    if (!t) continue;
    if (t == 0x02 || t == 0x08 || t == 0x10) extended = true;
    uint32_t id = (t == 0x02 || t == 0x08) ? static_cast<uint32_t>(e.id) : 0xFFFFFFFFu;
    k.emplace_back(t, id, e.perm & 7);
  }
  if (k.empty() || (!extended && !is_default)) return "";
  std::sort(k.begin(), k.end());
  std::string out;
  PutLe(&out, 2, 4);  // POSIX_ACL_XATTR_VERSION
  for (const auto& [tag, id, perm] : k) {
    PutLe(&out, static_cast<uint64_t>(tag), 2);
    PutLe(&out, static_cast<uint64_t>(perm), 2);
    PutLe(&out, id, 4);
  }
  return out;
}

Result<Manifest> ScanArchive(const std::string& path, const ArchiveScanOptions& opts,
                             const ChunkFn& on_chunk) {
  KILN_RETURN_IF_ERROR(LoadLibArchive().status());
  std::unique_ptr<archive, ArchiveCloser> a(Archive().archive_read_new());
  Archive().archive_read_support_filter_all(a.get());
  Archive().archive_read_support_format_all(a.get());
  int rc = path == "-" ? Archive().archive_read_open_fd(a.get(), 0, 1 << 20)
                       : Archive().archive_read_open_filename(a.get(), path.c_str(), 1 << 20);
  if (rc != ARCHIVE_OK) return ArchiveError(a.get(), path);

  std::map<std::string, Entry> entries;  // sorted by path, as the manifest wants
  std::string buffer;
  std::vector<Chunk> chunks;
  uint64_t bytes = 0, files = 0;
  for (;;) {
    archive_entry* ae = nullptr;
    rc = Archive().archive_read_next_header(a.get(), &ae);
    if (rc == ARCHIVE_EOF) break;
    if (rc != ARCHIVE_OK && rc != ARCHIVE_WARN) return ArchiveError(a.get(), path);
    const char* raw_name = Archive().archive_entry_pathname(ae);
    std::string member = raw_name ? raw_name : "";
    KILN_ASSIGN_OR_RETURN(std::string p, NormalizeArchivePath(member));
    std::string where = fmt::format("{}: member \"{}\"", path, member);
    if (entries.count(p))
      return InvalidArgument(fmt::format("{}: duplicate entry for {}", where, DisplayPath(p)));

    Entry e;
    e.path = p;
    e.mode = Archive().archive_entry_perm(ae) & 07777;
    e.uid = static_cast<uint32_t>(Archive().archive_entry_uid(ae));
    e.gid = static_cast<uint32_t>(Archive().archive_entry_gid(ae));
    e.mtime_sec = Archive().archive_entry_mtime(ae);
    e.mtime_nsec = Archive().archive_entry_mtime_is_set(ae)
                       ? static_cast<uint32_t>(Archive().archive_entry_mtime_nsec(ae))
                       : 0;
    if (const char* hl = Archive().archive_entry_hardlink(ae)) {
      auto target = NormalizeArchivePath(hl);
      if (!target.ok())
        return InvalidArgument(where + ": hard link target: " + target.status().message());
      auto t = entries.find(*target);
      if (t == entries.end())
        return InvalidArgument(
            fmt::format("{}: hard link to {}, which is not earlier in the archive", where,
                        DisplayPath(*target)));
      if (t->second.type == EntryType::kDir)
        return InvalidArgument(where + ": hard link to a directory");
      Entry link;
      link.path = p;
      link.type = EntryType::kHardlink;
      link.target = t->second.type == EntryType::kHardlink ? t->second.target : *target;
      entries.emplace(p, std::move(link));
      continue;
    }
    switch (Archive().archive_entry_filetype(ae)) {
      case AE_IFDIR: e.type = EntryType::kDir; break;
      case AE_IFREG: e.type = EntryType::kFile; break;
      case AE_IFLNK: {
        e.type = EntryType::kSymlink;
        const char* t = Archive().archive_entry_symlink(ae);
        e.target = t ? t : "";
        if (e.target.empty()) return InvalidArgument(where + ": symlink with an empty target");
        break;
      }
      case AE_IFCHR:
      case AE_IFBLK:
        if (!opts.allow_devices)
          return InvalidArgument(where + ": device nodes are not allowed (--allow-devices)");
        e.type = Archive().archive_entry_filetype(ae) == AE_IFCHR ? EntryType::kCharDev
                                                                  : EntryType::kBlockDev;
        e.dev_major = static_cast<uint32_t>(Archive().archive_entry_rdevmajor(ae));
        e.dev_minor = static_cast<uint32_t>(Archive().archive_entry_rdevminor(ae));
        break;
      case AE_IFIFO: e.type = EntryType::kFifo; break;
      case AE_IFSOCK: e.type = EntryType::kSocket; break;
      default: return InvalidArgument(where + ": unsupported member type");
    }
    if (p.empty() && e.type != EntryType::kDir)
      return InvalidArgument(where + ": the root must be a directory");

    // Extended attributes, then ACLs in the kernel's xattr form.
    const char* xname;
    const void* xvalue;
    size_t xsize;
    std::map<std::string, std::string> xattrs;
    Archive().archive_entry_xattr_reset(ae);
    while (Archive().archive_entry_xattr_next(ae, &xname, &xvalue, &xsize) == ARCHIVE_OK)
      xattrs[xname] = std::string(static_cast<const char*>(xvalue), xsize);
    for (int type : {ARCHIVE_ENTRY_ACL_TYPE_ACCESS, ARCHIVE_ENTRY_ACL_TYPE_DEFAULT}) {
      std::vector<AclEntry> acl;
      if (Archive().archive_entry_acl_reset(ae, type) > 0) {
        int t, perm, tag, id;
        const char* name;
        while (Archive().archive_entry_acl_next(ae, type, &t, &perm, &tag, &id, &name) ==
               ARCHIVE_OK)
          acl.push_back({tag, perm, id});
      }
      bool is_default = type == ARCHIVE_ENTRY_ACL_TYPE_DEFAULT;
      // With an extended access ACL the kernel's group mode bits are the
      // mask; libarchive reports the owning group's instead.
      if (!is_default)
        for (const auto& ace : acl)
          if (ace.tag == ARCHIVE_ENTRY_ACL_MASK) e.mode = (e.mode & ~070u) | ((ace.perm & 7u) << 3);
      std::string v = AclToXattr(acl, is_default);
      if (!v.empty())
        xattrs[is_default ? "system.posix_acl_default" : "system.posix_acl_access"] = v;
    }
    for (auto& [k, v] : xattrs) e.xattrs.push_back({k, std::move(v)});

    if (e.type == EntryType::kFile) {
      // Read the content, cutting chunks as soon as their end is known.
      uint64_t declared = Archive().archive_entry_size_is_set(ae)
                              ? static_cast<uint64_t>(Archive().archive_entry_size(ae))
                              : 0;
      std::string data;
      uint64_t total = 0;
      char block[1 << 16];
      auto flush = [&](bool final) -> Status {
        size_t pos = 0;
        while (pos < data.size()) {
          size_t left = data.size() - pos;
          bool whole = final && total <= kWholeFileMax;
          size_t n =
              whole ? left
                    : NextChunkLength(reinterpret_cast<const uint8_t*>(data.data() + pos), left);
          if (!whole && total <= kWholeFileMax && !final) break;
          if (!whole && n == left && left < kChunkMax && !final) break;
          std::string_view piece(data.data() + pos, n);
          Sha256Digest d = Sha256Of(piece);
          e.chunks.push_back({d, n});
          KILN_RETURN_IF_ERROR(on_chunk(d, piece));
          pos += n;
        }
        data.erase(0, pos);
        return Status::Ok();
      };
      for (;;) {
        la_ssize_t n = Archive().archive_read_data(a.get(), block, sizeof block);
        if (n < 0) return ArchiveError(a.get(), where);
        if (n == 0) break;
        data.append(block, static_cast<size_t>(n));
        total += static_cast<uint64_t>(n);
        bytes += static_cast<uint64_t>(n);
        if (total > kWholeFileMax && data.size() >= 4 * kChunkMax)
          KILN_RETURN_IF_ERROR(flush(false));
      }
      KILN_RETURN_IF_ERROR(flush(true));
      if (declared && total != declared)
        return Corruption(
            fmt::format("{}: {} bytes of content, the header says {}", where, total, declared));
      e.size = total;
      ++files;
      if (opts.progress) opts.progress(bytes, files);
    }
    entries.emplace(p, std::move(e));
  }

  // Parents the archive left out, and the root.
  std::vector<std::string> missing;
  for (const auto& [p, e] : entries) {
    for (std::string_view parent = ParentPath(p);; parent = ParentPath(parent)) {
      if (!entries.count(std::string(parent))) missing.emplace_back(parent);
      if (parent.empty()) break;
    }
  }
  if (entries.empty()) missing.emplace_back("");
  for (const auto& p : missing) {
    if (entries.count(p)) continue;
    Entry d;
    d.path = p;
    d.type = EntryType::kDir;
    d.mode = 0755;
    entries.emplace(p, std::move(d));
  }
  Manifest m;
  m.entries.reserve(entries.size());
  for (auto& [p, e] : entries) m.entries.push_back(std::move(e));
  Status s = ValidateManifest(m);
  if (!s.ok()) return InvalidArgument(fmt::format("{}: {}", path, s.message()));
  return m;
}

}  // namespace kiln::imager
