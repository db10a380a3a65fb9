#pragma once
// The standalone GRUB EFI binary kiln's install environment carries, so the
// agent can make UEFI machines boot without grub-install, efibootmgr or
// NVRAM entries: the agent copies it to the EFI system partition's
// removable-media path (EFI/BOOT/BOOTX64.EFI, which every UEFI firmware
// boots with no boot entry) and writes its grub.cfg under kGrubEfiPrefix
// on the same partition.
//
// The image is built at `kiln initrd build` time with grub-mkimage from
// Debian's grub-efi-amd64-bin. Its prefix has no device part, so GRUB reads
// the configuration from the partition it was loaded from.

#include <string>
#include <vector>

#include "common/status.h"

namespace kiln::initrd {

// Where the install environment holds the image, and where on the ESP the
// image looks for grub.cfg. The agent (agent/bootloader.cc) relies on both.
inline constexpr const char* kGrubEfiImagePath = "/usr/lib/kiln/grubx64.efi";
inline constexpr const char* kGrubEfiPrefix = "/EFI/kiln";

// Modules built into the image: partition tables and the filesystems kiln
// formats (GPT/msdos, vfat, ext2/3/4, xfs, btrfs), UUID search, the Linux
// loader, gzip, and the EFI consoles.
const std::vector<std::string>& GrubEfiModules();

// Runs grub-mkimage (x86_64-efi, prefix kGrubEfiPrefix) with modules from
// grub_dir into scratch_path and returns the image's bytes; scratch_path
// is removed. NotFound naming the package when grub-mkimage or the module
// directory is missing.
Result<std::string> BuildGrubEfiImage(const std::string& grub_dir, const std::string& scratch_path);

}  // namespace kiln::initrd
