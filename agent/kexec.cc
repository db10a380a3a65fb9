#include "agent/kexec.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <linux/kexec.h>
#include <linux/reboot.h>
#include <sys/reboot.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/file_util.h"

namespace kiln::agent {

Result<RebootMode> RebootModeFrom(const Json& variables) {
  if (!variables.is_object() || !variables.contains("REBOOT")) return RebootMode::kFirmware;
  const Json& v = variables["REBOOT"];
  if (v.is_string() && v.get<std::string>() == "firmware") return RebootMode::kFirmware;
  if (v.is_string() && v.get<std::string>() == "kexec") return RebootMode::kKexec;
  return InvalidArgument(fmt::format(
      "variable REBOOT is {}: expected \"firmware\" (the default) or \"kexec\"", v.dump()));
}

Status KexecLoad(const BootEntry& entry) {
  UniqueFd kernel(::open(entry.kernel.c_str(), O_RDONLY | O_CLOEXEC));
  if (!kernel.valid()) return ErrnoError("kexec: open " + entry.kernel, errno);
  UniqueFd initrd;
  unsigned long flags = 0;
  if (entry.initrd.empty()) {
    flags |= KEXEC_FILE_NO_INITRAMFS;
  } else {
    initrd = UniqueFd(::open(entry.initrd.c_str(), O_RDONLY | O_CLOEXEC));
    if (!initrd.valid()) return ErrnoError("kexec: open " + entry.initrd, errno);
  }
  // The length counts the terminating NUL.
  if (::syscall(SYS_kexec_file_load, kernel.get(), initrd.valid() ? initrd.get() : -1,
                entry.cmdline.size() + 1, entry.cmdline.c_str(), flags) != 0) {
    int err = errno;
    return FailedPrecondition(
        fmt::format("kexec: the kernel refused {} ({}){}", entry.kernel, std::strerror(err),
                    err == ENOSYS ? ": this kernel has no kexec_file_load" : ""));
  }
  return Status::Ok();
}

Status KexecReboot() {
  ::sync();
  if (::reboot(LINUX_REBOOT_CMD_KEXEC) != 0)
    return FailedPrecondition(fmt::format("kexec: {}", std::strerror(errno)));
  return Status::Ok();  // not reached: the new kernel runs
}

}  // namespace kiln::agent
