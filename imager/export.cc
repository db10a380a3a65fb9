#include "imager/export.h"

#include <fmt/format.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "common/libarchive_api.h"
#include "common/strings.h"

namespace kiln::imager {
namespace {

archive* A(void* p) {
  return static_cast<archive*>(p);
}

Status Err(void* a, std::string_view what) {
  const char* m = Archive().archive_error_string(A(a));
  return IoError(fmt::format("{}: {}", what, m ? m : "archive error"));
}

std::string MemberName(const std::string& path) {
  return path.empty() ? "./" : "./" + path;
}

}  // namespace

Result<std::unique_ptr<ArchiveExportSink>> ArchiveExportSink::Open(const std::string& path,
                                                                   const std::string& format_name) {
  const std::string& name = format_name.empty() ? path : format_name;
  KILN_RETURN_IF_ERROR(LoadLibArchive().status());
  std::unique_ptr<ArchiveExportSink> s(new ArchiveExportSink());
  archive* a = Archive().archive_write_new();
  s->archive_ = a;
  s->path_ = path;
  Archive().archive_write_set_format_pax_restricted(a);
  if (name == "-" || EndsWith(name, ".zst") || EndsWith(name, ".tzst")) {
    Archive().archive_write_add_filter_zstd(a);
  } else if (EndsWith(name, ".gz") || EndsWith(name, ".tgz")) {
    Archive().archive_write_add_filter_gzip(a);
  } else if (EndsWith(name, ".xz")) {
    Archive().archive_write_add_filter_xz(a);
  } else if (!EndsWith(name, ".tar")) {
    return InvalidArgument(fmt::format("{}: name it .tar, .tar.zst, .tar.gz or .tar.xz", name));
  }
  int rc = path == "-" ? Archive().archive_write_open_fd(a, 1)
                       : Archive().archive_write_open_filename(a, path.c_str());
  if (rc != ARCHIVE_OK) return Err(a, path);
  return s;
}

ArchiveExportSink::~ArchiveExportSink() {
  if (archive_) Archive().archive_write_free(A(archive_));
}

Status ArchiveExportSink::OnHeader(const StreamHeader& h) {
  if (h.kind != StreamKind::kFull) return InvalidArgument("export needs a full stream");
  return Status::Ok();
}

Status ArchiveExportSink::OnEntry(const StreamEntry& se) {
  const Entry& e = se.entry;
  if (e.type == EntryType::kSocket) {
    ++skipped_sockets_;
    return Status::Ok();
  }
  archive_entry* ae = Archive().archive_entry_new();
  Archive().archive_entry_set_pathname(ae, MemberName(e.path).c_str());
  Archive().archive_entry_set_uid(ae, e.uid);
  Archive().archive_entry_set_gid(ae, e.gid);
  Archive().archive_entry_set_mtime(ae, e.mtime_sec, e.mtime_nsec);
  mode_t type = 0;
  switch (e.type) {
    case EntryType::kDir: type = AE_IFDIR; break;
    case EntryType::kFile: type = AE_IFREG; break;
    case EntryType::kSymlink: type = AE_IFLNK; break;
    case EntryType::kHardlink: type = AE_IFREG; break;
    case EntryType::kCharDev: type = AE_IFCHR; break;
    case EntryType::kBlockDev: type = AE_IFBLK; break;
    case EntryType::kFifo: type = AE_IFIFO; break;
    case EntryType::kSocket: type = AE_IFSOCK; break;
  }
  Archive().archive_entry_set_filetype(ae, type);
  Archive().archive_entry_set_perm(ae, e.mode);
  if (e.type == EntryType::kFile)
    Archive().archive_entry_set_size(ae, static_cast<la_int64_t>(e.size));
  if (e.type == EntryType::kSymlink) Archive().archive_entry_set_symlink(ae, e.target.c_str());
  if (e.type == EntryType::kHardlink) {
    Archive().archive_entry_set_hardlink(ae, MemberName(e.target).c_str());
    Archive().archive_entry_set_size(ae, 0);
  }
  if (e.type == EntryType::kCharDev || e.type == EntryType::kBlockDev) {
    Archive().archive_entry_set_rdevmajor(ae, e.dev_major);
    Archive().archive_entry_set_rdevminor(ae, e.dev_minor);
  }
  for (const auto& x : e.xattrs)
    Archive().archive_entry_xattr_add_entry(ae, x.name.c_str(), x.value.data(), x.value.size());
  int rc = Archive().archive_write_header(A(archive_), ae);
  Archive().archive_entry_free(ae);
  if (rc != ARCHIVE_OK) return Err(archive_, fmt::format("{}: {}", path_, MemberName(e.path)));
  ++entries_;
  return Status::Ok();
}

Status ArchiveExportSink::OnChunk(const Sha256Digest&, std::string_view data) {
  la_ssize_t n = Archive().archive_write_data(A(archive_), data.data(), data.size());
  if (n < 0 || static_cast<size_t>(n) != data.size()) return Err(archive_, path_);
  return Status::Ok();
}

Status ArchiveExportSink::OnDelete(const std::string&) {
  return InvalidArgument("export needs a full stream");
}

Status ArchiveExportSink::OnEnd(const StreamCounts&) {
  if (Archive().archive_write_close(A(archive_)) != ARCHIVE_OK) return Err(archive_, path_);
  return Status::Ok();
}

}  // namespace kiln::imager
