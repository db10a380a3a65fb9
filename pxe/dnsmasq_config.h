#pragma once
// The dnsmasq configuration kiln renders for network boot. dnsmasq only
// answers DHCP (DNS off, TFTP off: kiln serves TFTP itself):
//
//   proxy  (default) beside the site's DHCP server: dnsmasq adds boot
//          information to the site's offers (proxy-DHCP, RFC 4578 / PXE),
//          leases nothing
//   full   an isolated boot network: dnsmasq leases addresses from the
//          given ranges and answers boot options itself
//
// Machines are told apart by client architecture (option 93): BIOS gets
// bios_loader (iPXE's undionly.kpxe, or pxelinux.0: then iPXE ROMs on BIOS
// get it too, for one PXELINUX path over TFTP), x86-64 UEFI gets
// efi_loader (ipxe.efi, or grubnetx64.efi / shimx64.efi for Secure Boot).
// iPXE is recognised by option 175 or its user class "iPXE" and gets the
// HTTP script URL instead, so the chainload ends. In proxy mode every answer
// carries the boot file and server in the offer itself (see the .cc for why
// UEFI gets no PXE menu entry). In full mode the
// settings that remove iPXE's long waits are set (docs/FACTS: no-ping,
// 175.176 no-pxedhcp, and router advertisements when the interface has a
// global or unique-local IPv6 address).

#include <string>
#include <vector>

#include "common/status.h"

namespace kiln::pxe {

enum class DhcpMode { kOff, kProxy, kFull };
std::string_view DhcpModeName(DhcpMode m);
// "off", "proxy", "full"; anything else is kInvalidArgument.
Result<DhcpMode> ParseDhcpMode(std::string_view text);

struct DnsmasqConfig {
  DhcpMode mode = DhcpMode::kProxy;
  std::string interface;            // REQUIRED
  std::string server_ip;            // kiln's IPv4 address there: the TFTP server
  std::string network;              // proxy: the subnet ("10.0.0.0")
  std::string netmask;              // proxy: its mask
  std::vector<std::string> ranges;  // full: dnsmasq dhcp-range values
  std::string ipxe_url;             // "http://10.0.0.1:7070/boot/ipxe"
  std::string bios_loader = "undionly.kpxe";
  std::string efi_loader = "ipxe.efi";
  std::string lease_file;  // full
  std::string ipv6;        // full: when set, router advertisements on
  bool log_dhcp = false;   // dnsmasq's per-packet DHCP log
};

// pxelinux.0 or lpxelinux.0 (in any directory): BIOS machines then boot
// PXELINUX even when their PXE ROM is iPXE.
bool IsPxelinuxLoader(std::string_view loader);

// REQUIRES: mode != kOff. Values are checked (no newlines, ranges given in
// full mode); the result still goes through `dnsmasq --test`.
Result<std::string> RenderDnsmasqConfig(const DnsmasqConfig& c);

// Runs `dnsmasq --test -C path`; the error carries dnsmasq's own message.
Status TestDnsmasqConfig(const std::string& dnsmasq, const std::string& path);

}  // namespace kiln::pxe
