#pragma once
// The per-machine files of a boot tree, rendered all at once for a static
// TFTP server (`kiln pxe export DIR` for a tftpd-hpa site). They are the
// same bytes kiln's own TFTP server renders per request:
//
//   pxelinux.cfg/01-<mac>      per MAC of every node
//   pxelinux.cfg/default       boot the local disk
//   grub/kiln/<mac>.cfg        per MAC of every node
//   grub/grub.cfg, grub/x86_64-efi/grub.cfg   the GRUB dispatcher
//
// A static server cannot discover: an unknown MAC gets the default (its
// local disk). Enrollment tokens are written as they are at export time;
// each works once, so export again after machines enrolled.

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "pxe/boot_config.h"

namespace kiln::pxe {

struct ExportEntry {
  Mac mac;
  BootDecision decision;
};

// path (relative to the tree) -> content.
std::map<std::string, std::string> RenderExportFiles(const std::vector<ExportEntry>& entries,
                                                     const BootSettings& settings,
                                                     const std::string& server_url);

// True for paths RenderExportFiles may produce (so a re-export can delete
// the files of nodes that are gone, and nothing else).
bool IsExportedConfig(const std::string& path);

}  // namespace kiln::pxe
