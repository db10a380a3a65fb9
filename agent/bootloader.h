#pragma once
// Makes an installed disk boot on BIOS machines with EXTLINUX: writes
// /boot/extlinux/extlinux.conf for the newest kernel in the target's /boot
// (root=UUID=..., the plan's CONSOLE variable as console=), installs the
// loader into the boot partition's filesystem, writes SYSLINUX's MBR code
// (mbr.bin for msdos tables, gptmbr.bin for GPT) and marks the boot
// partition active (msdos) or LegacyBIOSBootable (GPT).
//
// UEFI machines (firmware "uefi") get the install environment's standalone
// GRUB on the plan's EFI system partition instead (agent/grub_efi.h), with
// the same kernel command line.

#include <string>

#include "agent/command_runner.h"
#include "agent/disk_plan.h"
#include "agent/initrd/grub_image.h"
#include "agent/kexec.h"
#include "common/json.h"
#include "common/status.h"

namespace kiln::agent {

struct BootloaderOptions {
  std::string target = "/target";
  std::string firmware = "bios";  // facts.firmware.type
  std::string syslinux_dir = "/usr/lib/EXTLINUX";
  std::string extra_args;  // appended to the kernel command line
  // UEFI: the GRUB EFI image, and where to stage files for mtools when the
  // plan does not mount the ESP.
  std::string grub_efi_image = initrd::kGrubEfiImagePath;
  std::string scratch_dir = "/tmp/kiln-esp";
};

// The plan's EFI system partition (type=esp) for a UEFI install: the one on
// the boot partition's disk, else the first one; null when there is none.
const PartitionSpec* EspPartition(const DiskPlan& plan);

// What the bootloader phase says it does, by firmware.
std::string BootloaderDescription(const std::string& firmware);

// The newest vmlinuz-* in DIR (version order) and its initrd.img-* if any.
struct KernelFiles {
  std::string kernel, initrd;  // file names in DIR
};
Result<KernelFiles> FindKernel(const std::string& boot_dir);

// The extlinux.conf text. kernel_dir is where the kernel is as the loader
// sees it: "/" when /boot is its own partition, "/boot/" otherwise.
std::string ExtlinuxConfig(const KernelFiles& k, const std::string& kernel_dir,
                           const std::string& root_uuid, const std::string& args);

// Installs the boot loader; `entry` (if given) receives what it boots, as
// paths under the target, for kexec.
Status InstallBootloader(CommandRunner* runner, const DiskPlan& plan, const Json& variables,
                         const BootloaderOptions& opts, BootEntry* entry = nullptr);

}  // namespace kiln::agent
