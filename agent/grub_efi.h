#pragma once
// Makes an installed disk boot on UEFI machines with the standalone GRUB
// image the install environment carries (agent/initrd/grub_image.h), with
// no grub-install, efibootmgr or NVRAM entry: the EFI system partition gets
//   EFI/BOOT/BOOTX64.EFI   the GRUB image (the removable-media path every
//                          UEFI firmware boots without a boot entry)
//   EFI/kiln/grub.cfg      finds the boot partition by filesystem UUID and
//                          boots the newest kernel with the same command
//                          line the EXTLINUX path writes
// An ESP the plan mounts is written through the mounted filesystem; one it
// does not mount is written with mtools (mmd, mcopy) straight to the
// partition, which needs no vfat support in the running kernel.

#include <string>
#include <vector>

#include "agent/command_runner.h"
#include "common/status.h"

namespace kiln::agent {

struct KernelFiles;

// GRUB's configuration. kernel_dir is the kernel's directory on the
// partition whose UUID is boot_uuid ("/" for a separate /boot, "/boot/"
// otherwise).
std::string GrubEfiConfig(const KernelFiles& k, const std::string& kernel_dir,
                          const std::string& boot_uuid, const std::string& root_uuid,
                          const std::string& args);

struct EspFile {
  std::string path;  // relative to the ESP's root, e.g. "EFI/BOOT/BOOTX64.EFI"
  std::string content;
};
// The files above, in the order they are written (the image last, so an
// ESP with a boot file always has its configuration).
std::vector<EspFile> EspFiles(std::string grub_image, std::string grub_cfg);

// Writes files under a mounted ESP at dir (each replaced by rename and
// synced; no chmod, which vfat may refuse).
Status WriteEspDir(const std::string& dir, const std::vector<EspFile>& files);

// Writes files onto the vfat filesystem on device with mtools, staging
// them in scratch_dir (created, then removed).
Status WriteEspMtools(CommandRunner* runner, const std::string& device,
                      const std::vector<EspFile>& files, const std::string& scratch_dir);

}  // namespace kiln::agent
