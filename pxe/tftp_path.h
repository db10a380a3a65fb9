#pragma once
// File names from the network, made safe.
//
// NormalizeTftpPath turns what a client asked for into a relative path with
// no "." or ".." segments, or refuses it:
//   - backslashes count as separators (Windows-style PXE clients send
//     "pxelinux.cfg\default");
//   - leading slashes are dropped: an absolute name means the TFTP root
//     (GRUB asks for "/grub/grub.cfg"), as tftpd-hpa --secure does;
//   - empty and "." segments are dropped;
//   - any ".." segment is refused (kPermissionDenied), whatever follows it;
//   - control characters are refused (kInvalidArgument);
//   - an empty result (the root itself) is refused (kInvalidArgument).
//
// OpenBeneath opens a normalised path for reading below a root directory
// with openat2(RESOLVE_BENEATH): a symlink may point anywhere inside the
// root, but one that leads outside it is refused (kPermissionDenied), and
// so are /proc magic links. Only regular files open; a directory or device
// is kPermissionDenied, a missing file kNotFound.
//
// Thread safety: pure functions / independent syscalls.

#include <string>
#include <string_view>

#include "common/file_util.h"
#include "common/status.h"

namespace kiln::pxe {

Result<std::string> NormalizeTftpPath(std::string_view name);

struct OpenedFile {
  UniqueFd fd;
  uint64_t size = 0;
};

// REQUIRES: rel came from NormalizeTftpPath.
Result<OpenedFile> OpenBeneath(int root_fd, const std::string& rel);

}  // namespace kiln::pxe
