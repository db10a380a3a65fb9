#pragma once
// The boot tree: the directory kiln's TFTP server (and a tftpd-hpa site,
// after `kiln pxe export`) serves. Static boot loaders are copied in from
// Debian's packages; the install environment (kiln/vmlinuz,
// kiln/initrd.img) is put there by the operator or `kiln initrd build`;
// per-machine configs are not files at all but rendered per request
// (pxe/boot_content.h), or written out by an export.
//
//   pxelinux.0 lpxelinux.0 ldlinux.c32 ...   pxelinux, syslinux-common
//   undionly.kpxe ipxe.efi snponly.efi       ipxe
//   grubnetx64.efi grubx64.efi shimx64.efi   grub-efi-amd64-signed, shim-signed
//   kiln/vmlinuz kiln/initrd.img             the install environment

#include <string>
#include <vector>

#include "common/status.h"

namespace kiln::pxe {

struct StaticBootFile {
  std::string name;                  // in the boot tree
  std::vector<std::string> sources;  // absolute; the first that exists wins
  std::string package;               // the Debian package that ships it
  bool required = false;             // needed for BIOS or UEFI network boot
};

// The files kiln copies, in order.
const std::vector<StaticBootFile>& StaticBootFiles();

struct InstalledFile {
  std::string name;
  std::string source;  // empty when missing
  enum class State { kInstalled, kUnchanged, kMissing } state = State::kMissing;
  bool required = false;
  std::string package;
};

// Copies every static boot file that exists into root (creating it),
// replacing only files whose bytes differ, each atomically. source_prefix
// is prepended to every source path (tests point it at a fake /usr).
// Missing files are reported, not errors: the caller decides (the server
// warns, an export fails on a missing required file).
Result<std::vector<InstalledFile>> InstallStaticBootFiles(const std::string& root,
                                                          const std::string& source_prefix = "");

// "pxelinux.0 (pxelinux), ipxe.efi (ipxe)": the required files missing.
std::string MissingRequired(const std::vector<InstalledFile>& files);

}  // namespace kiln::pxe
