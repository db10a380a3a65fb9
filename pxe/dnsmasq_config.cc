#include "pxe/dnsmasq_config.h"

#include <fmt/format.h>

#include "common/strings.h"
#include "common/subprocess.h"

namespace kiln::pxe {

std::string_view DhcpModeName(DhcpMode m) {
  switch (m) {
    case DhcpMode::kOff: return "off";
    case DhcpMode::kProxy: return "proxy";
    case DhcpMode::kFull: return "full";
  }
  return "off";
}

Result<DhcpMode> ParseDhcpMode(std::string_view text) {
  if (text == "off") return DhcpMode::kOff;
  if (text == "proxy") return DhcpMode::kProxy;
  if (text == "full") return DhcpMode::kFull;
  return InvalidArgument(
      fmt::format("unknown DHCP mode \"{}\" (expected proxy, full or off)", text));
}

namespace {

// A value that goes into one line of the config.
Status CheckValue(std::string_view what, std::string_view v) {
  for (char c : v)
    if (c == '\n' || c == '\r' || c == '\0')
      return InvalidArgument(fmt::format("{} contains a line break", what));
  return Status::Ok();
}

}  // namespace

bool IsPxelinuxLoader(std::string_view loader) {
  std::string_view base = loader.substr(loader.find_last_of('/') + 1);
  return base == "pxelinux.0" || base == "lpxelinux.0";
}

Result<std::string> RenderDnsmasqConfig(const DnsmasqConfig& c) {
  if (c.mode == DhcpMode::kOff) return InvalidArgument("DHCP is off: there is nothing to render");
  if (c.interface.empty()) return InvalidArgument("DHCP needs an interface (--interface)");
  if (c.server_ip.empty()) return InvalidArgument("DHCP needs the server's IPv4 address");
  for (auto [what, v] : {std::pair<std::string_view, const std::string&>{"interface", c.interface},
                         {"server address", c.server_ip},
                         {"iPXE URL", c.ipxe_url},
                         {"BIOS loader", c.bios_loader},
                         {"UEFI loader", c.efi_loader},
                         {"lease file", c.lease_file},
                         {"network", c.network},
                         {"netmask", c.netmask}})
    KILN_RETURN_IF_ERROR(CheckValue(what, v));
  for (const auto& r : c.ranges) KILN_RETURN_IF_ERROR(CheckValue("--dhcp-range", r));

  std::string out = fmt::format(
      "# Written by kiln serve at every start; edits are lost.\n"
      "# DHCP only: DNS is off, and kiln itself serves TFTP on {0}.\n"
      "port=0\n"
      "interface={1}\n"
      "bind-interfaces\n"
      "pid-file=\n",
      c.server_ip, c.interface);
  if (c.log_dhcp) out += "log-dhcp\n";

  if (c.mode == DhcpMode::kProxy) {
    if (c.network.empty() || c.netmask.empty())
      return InvalidArgument("proxy DHCP needs the interface's network and netmask");
    out += fmt::format(
        "\n# proxy-DHCP: the site's DHCP server leases addresses; we add boot information.\n"
        "dhcp-range={},proxy,{}\n",
        c.network, c.netmask);
  } else {
    if (c.ranges.empty())
      return InvalidArgument(
          "--dhcp full needs at least one --dhcp-range START,END[,MASK][,LEASE]");
    out += "\n# full DHCP for an isolated boot network.\n";
    for (const auto& r : c.ranges) out += "dhcp-range=" + r + "\n";
    out += "dhcp-authoritative\n";
    out += "no-ping\n";  // no 3 s wait before each offer
    if (!c.lease_file.empty()) out += "dhcp-leasefile=" + c.lease_file + "\n";
    if (!c.ipv6.empty()) {
      // iPXE waits ~13 s for a router advertisement without one.
      out += fmt::format("enable-ra\ndhcp-range=::,constructor:{},ra-only\n", c.interface);
    }
  }

  // With PXELINUX as the BIOS loader every BIOS machine boots PXELINUX over
  // TFTP, whatever its PXE ROM: the operator chose one path for the BIOS
  // fleet, and an iPXE ROM provides the PXE API that PXELINUX needs. Only
  // iPXE on UEFI (chainloaded from the UEFI loader) still gets the script.
  const bool bios_pxelinux = IsPxelinuxLoader(c.bios_loader);
  out += fmt::format(
      "\n# Who is asking: client architecture (option 93), and iPXE.\n"
      "dhcp-match=set:bios,option:client-arch,0\n"
      "dhcp-match=set:efi64,option:client-arch,7\n"
      "dhcp-match=set:efi64,option:client-arch,9\n"
      "dhcp-match=set:ipxe,175\n"
      "dhcp-userclass=set:ipxe,iPXE\n"
      "\n# iPXE fetches its script over HTTP; firmware chainloads a loader over TFTP.\n"
      "dhcp-boot=tag:ipxe,{4}{0},,{3}\n"
      "dhcp-boot=tag:!ipxe,tag:efi64,{1},,{3}\n"
      "dhcp-boot={5}tag:bios,{2},,{3}\n",
      c.ipxe_url, c.efi_loader, c.bios_loader, c.server_ip, bios_pxelinux ? "tag:!bios," : "",
      bios_pxelinux ? "" : "tag:!ipxe,");
  if (c.mode == DhcpMode::kProxy) {
    // dnsmasq answers proxy requests only with a PXE menu configured, and
    // BIOS PXE firmware expects one: one entry, no prompt. UEFI gets no
    // menu entry on purpose: with one, dnsmasq leaves the boot file out of
    // its offer and waits for a request on port 4011 that much UEFI
    // firmware never sends; without one, the dhcp-boot line above puts file
    // and server straight into the offer.
    out += fmt::format(
        "pxe-prompt=\"kiln\",0\n"
        "pxe-service={2}x86PC,\"kiln\",{0},{1}\n",
        c.bios_loader, c.server_ip, bios_pxelinux ? "" : "tag:!ipxe,");
  } else {
    // Tell iPXE not to wait for proxy-DHCP offers (encapsulated 175.176).
    out += "dhcp-option=tag:ipxe,encap:175,176,1\n";
  }
  return out;
}

Status TestDnsmasqConfig(const std::string& dnsmasq, const std::string& path) {
  auto r = RunSubprocess({dnsmasq, "--test", "-C", path},
                         {.timeout = std::chrono::seconds(10), .merge_stderr = true});
  if (!r.ok()) return r.status().WithContext("dnsmasq --test");
  if (r->exit_code != 0)
    return InvalidArgument(fmt::format("dnsmasq rejects {}: {}", path, Trim(r->out)));
  return Status::Ok();
}

}  // namespace kiln::pxe
