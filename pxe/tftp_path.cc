#include "pxe/tftp_path.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "common/strings.h"

namespace kiln::pxe {

Result<std::string> NormalizeTftpPath(std::string_view name) {
  std::string out;
  std::string seg;
  auto flush = [&]() -> Status {
    if (seg.empty() || seg == ".") {
      seg.clear();
      return Status::Ok();
    }
    if (seg == "..") return PermissionDenied(fmt::format("\"{}\" leaves the TFTP root", name));
    if (!out.empty()) out.push_back('/');
    out += seg;
    seg.clear();
    return Status::Ok();
  };
  for (char c : name) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f)
      return InvalidArgument(fmt::format("file name contains control character 0x{:02x}", u));
    if (c == '/' || c == '\\') {
      KILN_RETURN_IF_ERROR(flush());
    } else {
      seg.push_back(c);
    }
  }
  KILN_RETURN_IF_ERROR(flush());
  if (out.empty()) return InvalidArgument(fmt::format("\"{}\" names no file", name));
  return out;
}

Result<OpenedFile> OpenBeneath(int root_fd, const std::string& rel) {
  open_how how{};
  how.flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
  int fd = static_cast<int>(::syscall(SYS_openat2, root_fd, rel.c_str(), &how, sizeof how));
  if (fd < 0) {
    int e = errno;
    if (e == ENOENT || e == ENOTDIR) return NotFound(fmt::format("{}: no such file", rel));
    if (e == EXDEV || e == ELOOP || e == EACCES || e == EPERM)
      return PermissionDenied(fmt::format("{}: access denied (outside the TFTP root or unreadable)", rel));
    return ErrnoError("open " + rel, e);
  }
  UniqueFd f(fd);
  struct stat st {};
  if (::fstat(f.get(), &st) != 0) return ErrnoError("stat " + rel, errno);
  if (!S_ISREG(st.st_mode))
    return PermissionDenied(fmt::format("{}: not a regular file", rel));
  // O_NONBLOCK was only for opening (a FIFO must not block the loop).
  int flags = ::fcntl(f.get(), F_GETFL);
  if (flags >= 0) ::fcntl(f.get(), F_SETFL, flags & ~O_NONBLOCK);
  return OpenedFile{std::move(f), static_cast<uint64_t>(st.st_size)};
}

}  // namespace kiln::pxe
