#include "agent/initrd/cpio_writer.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/file_util.h"
#include "common/libarchive_api.h"

namespace kiln::initrd {

Result<std::unique_ptr<CpioWriter>> CpioWriter::Create(const std::string& out_path, Compression c) {
  KILN_RETURN_IF_ERROR(LoadLibArchive().status());
  std::unique_ptr<CpioWriter> w(new CpioWriter);
  w->out_path_ = out_path;
  w->tmp_path_ = fmt::format("{}.tmp.{}", out_path, ::getpid());
  w->a_ = Archive().archive_write_new();
  if (!w->a_) return Internal("archive_write_new failed");
  Archive().archive_write_set_format_cpio_newc(w->a_);
  int rc = ARCHIVE_OK;
  if (c == Compression::kZstd) rc = Archive().archive_write_add_filter_zstd(w->a_);
  if (c == Compression::kGzip) rc = Archive().archive_write_add_filter_gzip(w->a_);
  KILN_RETURN_IF_ERROR(w->Check(rc, "compression filter"));
  // The kernel unpacks newc written in any block size; no padding to 10 KiB.
  Archive().archive_write_set_bytes_in_last_block(w->a_, 1);
  KILN_RETURN_IF_ERROR(w->Check(Archive().archive_write_open_filename(w->a_, w->tmp_path_.c_str()),
                                "open " + w->tmp_path_));
  return w;
}

CpioWriter::~CpioWriter() {
  if (a_) Archive().archive_write_free(a_);
  if (!finished_ && !tmp_path_.empty()) ::unlink(tmp_path_.c_str());
}

Status CpioWriter::Check(int rc, std::string_view what) {
  if (rc >= ARCHIVE_WARN) return Status::Ok();
  const char* err = Archive().archive_error_string(a_);
  return IoError(fmt::format("{}: {}", what, err ? err : "libarchive error"));
}

Status CpioWriter::Header(std::string_view path, mode_t type_and_mode, int64_t size,
                          std::string_view symlink) {
  archive_entry* e = Archive().archive_entry_new();
  std::string p(path);
  while (!p.empty() && p.front() == '/') p.erase(0, 1);
  Archive().archive_entry_set_pathname(e, p.c_str());
  Archive().archive_entry_set_mode(e, type_and_mode);
  Archive().archive_entry_set_size(e, size);
  Archive().archive_entry_set_uid(e, 0);
  Archive().archive_entry_set_gid(e, 0);
  Archive().archive_entry_set_nlink(e, S_ISDIR(type_and_mode) ? 2 : 1);
  // A fixed time keeps the archive reproducible for the same inputs.
  Archive().archive_entry_set_mtime(e, 0, 0);
  if (!symlink.empty()) Archive().archive_entry_set_symlink(e, std::string(symlink).c_str());
  int rc = Archive().archive_write_header(a_, e);
  Archive().archive_entry_free(e);
  ++entries_;
  return Check(rc, fmt::format("add {}", path));
}

Status CpioWriter::AddDirectory(std::string_view path, mode_t mode) {
  return Header(path, S_IFDIR | mode, 0);
}

Status CpioWriter::AddSymlink(std::string_view path, std::string_view target) {
  return Header(path, S_IFLNK | 0777, 0, target);
}

Status CpioWriter::AddData(std::string_view path, std::string_view data, mode_t mode) {
  KILN_RETURN_IF_ERROR(Header(path, S_IFREG | mode, static_cast<int64_t>(data.size())));
  if (!data.empty() && Archive().archive_write_data(a_, data.data(), data.size()) < 0)
    return Check(ARCHIVE_FATAL, fmt::format("write {}", path));
  return Status::Ok();
}

Status CpioWriter::AddFile(std::string_view path, const std::string& host_path, mode_t mode) {
  UniqueFd fd(::open(host_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return ErrnoError("open " + host_path, errno);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return ErrnoError("stat " + host_path, errno);
  if (!S_ISREG(st.st_mode)) return InvalidArgument(host_path + " is not a regular file");
  if (mode == 0) mode = st.st_mode & 07777;
  KILN_RETURN_IF_ERROR(Header(path, S_IFREG | mode, st.st_size));
  char buf[1 << 16];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError("read " + host_path, errno);
    }
    if (n == 0) break;
    if (Archive().archive_write_data(a_, buf, static_cast<size_t>(n)) < 0)
      return Check(ARCHIVE_FATAL, fmt::format("write {}", path));
  }
  return Status::Ok();
}

Status CpioWriter::Finish() {
  KILN_RETURN_IF_ERROR(Check(Archive().archive_write_close(a_), "close " + tmp_path_));
  if (::rename(tmp_path_.c_str(), out_path_.c_str()) != 0)
    return ErrnoError("rename to " + out_path_, errno);
  finished_ = true;
  return Status::Ok();
}

}  // namespace kiln::initrd
