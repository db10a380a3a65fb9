#pragma once
// Rendering boot configurations: PXELINUX (BIOS, TFTP), GRUB (UEFI through
// grubnetx64 or shim, TFTP) and iPXE scripts (HTTP). Pure functions of the
// decision and the settings, so a tftpd-hpa export and the live server
// produce the same bytes.
//
// The kernel command line carries what the install environment's /init
// reads: kiln.server=URL kiln.mode=install|discover|rescue kiln.node=ID
// kiln.token=TOKEN BOOTIF=01-<mac>, then the site's and the node's extra
// arguments.

#include <string>

#include "pxe/boot_resolver.h"
#include "pxe/mac.h"

namespace kiln::pxe {

struct BootSettings {
  // The install environment, relative to the boot tree's root.
  std::string kernel = "kiln/vmlinuz";
  std::string initrd = "kiln/initrd.img";
  // Appended to every kernel command line ("console=ttyS0,115200").
  std::string kernel_args;
  // The URL machines use to reach kiln's HTTP API. Empty: built per request
  // from the address the machine reached us at and http_port.
  std::string server_url;
  uint16_t http_port = 7070;
};

// The URL for a client that reached the server at local_ip.
std::string ServerUrlFor(const BootSettings& s, const std::string& local_ip);

// kiln.* arguments, BOOTIF (unless omitted) and extra arguments.
std::string KernelCommandLine(const Mac& mac, const BootDecision& d, const BootSettings& s,
                              const std::string& server_url, bool with_bootif = true);

// pxelinux.cfg/01-<mac>.
std::string RenderPxelinux(const Mac& mac, const BootDecision& d, const BootSettings& s,
                           const std::string& server_url);
// pxelinux.cfg/default: reached only when the per-MAC file is missing.
// Boots the local disk: a machine kiln cannot place must not be wiped.
std::string RenderPxelinuxDefault();

// GRUB: the per-MAC config, and the dispatcher that grub.cfg holds (it
// loads grub/kiln/<mac>.cfg for the MAC GRUB booted from).
std::string RenderGrub(const Mac& mac, const BootDecision& d, const BootSettings& s,
                       const std::string& server_url);
std::string RenderGrubDispatcher();

// iPXE: the per-MAC script (kernel and initrd over HTTP), and the entry
// script served without a MAC, which chains to the per-MAC one.
std::string RenderIpxe(const Mac& mac, const BootDecision& d, const BootSettings& s,
                       const std::string& server_url);
std::string RenderIpxeChain(const std::string& server_url);

}  // namespace kiln::pxe
