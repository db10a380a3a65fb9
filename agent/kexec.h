#pragma once
// Starting the installed system straight from the install environment
// (`REBOOT = "kexec"` in the plan's variables): the installed kernel,
// initrd and command line, the ones its boot loader would start, are loaded
// with kexec_file_load(2) while the target is still mounted, and after the
// install has reported in the machine jumps into them instead of resetting.
// That skips the firmware's POST (minutes on many servers), the PXE round
// that answers "boot from disk" and the boot loader. The boot loader is
// installed all the same and starts every later boot.
//
// kexec_file_load is used rather than kexec-tools: no extra program in the
// install environment, and the kernel checks the image's signature itself
// where it is configured to (Secure Boot lockdown).

#include <string>

#include "common/json.h"
#include "common/status.h"

namespace kiln::agent {

// How the machine leaves the install environment.
enum class RebootMode { kFirmware, kKexec };

// The plan variable REBOOT: absent or "firmware", or "kexec"; anything else
// is an error naming the variable and the value.
Result<RebootMode> RebootModeFrom(const Json& variables);

// What a boot loader entry starts: absolute paths as the install
// environment sees them (under the target), and the kernel command line.
struct BootEntry {
  std::string kernel, initrd, cmdline;
};

// Loads the entry as the kernel to start on kexec; errors name the file or
// the kernel's refusal.
Status KexecLoad(const BootEntry& entry);

// Flushes the filesystems and starts the loaded kernel. Returns only if the
// kernel refused (nothing loaded, or kexec not built in).
Status KexecReboot();

}  // namespace kiln::agent
