#pragma once
// Builds kiln's install environment: a compressed newc cpio with busybox,
// kiln-agent and the shared libraries it needs, the disk tools (sfdisk,
// mke2fs, mkfs.fat, extlinux and its MBRs, a GRUB EFI image for UEFI), the kernel modules for
// common NICs and disks with their dependencies, and an /init that brings up the network by DHCP
// and starts the agent (see init_script.h).

#include <functional>
#include <string>
#include <vector>

#include "agent/initrd/cpio_writer.h"
#include "common/status.h"

namespace kiln::initrd {

struct InitrdSpec {
  std::string kernel_version;
  // Either a root holding lib/modules/VERSION, or lib/modules/VERSION itself.
  std::string modules;
  std::string out;
  std::string agent_binary;
  std::vector<std::string> extra_modules;
  // Host files to include at the same path (scripts, keys, tools).
  std::vector<std::string> extra_files;
  // A standalone GRUB EFI image for UEFI installs (grub_image.h), built from
  // grub_dir's modules; false leaves UEFI out (the agent then refuses UEFI
  // machines, naming why).
  bool uefi = true;
  std::string grub_dir = "/usr/lib/grub/x86_64-efi";
  Compression compression = Compression::kZstd;
};

struct InitrdReport {
  uint64_t entries = 0;
  uint64_t bytes = 0;
  std::vector<std::string> modules;    // relative paths, in load order
  std::vector<std::string> binaries;   // host paths copied
  std::vector<std::string> libraries;  // shared libraries copied
};

// The modules every install environment carries (those built into the
// kernel are skipped): virtio, e1000/e1000e/igb/ixgbe and other common NICs,
// ahci/ata_piix/nvme/sd_mod, ext4, vfat and the crc32c drivers ext4 needs.
const std::vector<std::string>& DefaultModules();

Result<InitrdReport> BuildInitrd(const InitrdSpec& spec,
                                 const std::function<void(std::string_view)>& progress = {});

// Shared libraries a dynamic executable needs (via ldd), with the loader.
// Empty for static executables.
Result<std::vector<std::string>> SharedLibraries(const std::string& binary);

}  // namespace kiln::initrd
