#include "pxe/boot_config.h"

#include <fmt/format.h>

namespace kiln::pxe {
namespace {

// Comments carry names from the inventory; keep them on one line.
std::string OneLine(std::string_view s) {
  std::string out;
  for (char c : s) out += (c == '\n' || c == '\r') ? ' ' : c;
  return out;
}

std::string Header(const Mac& mac, const BootDecision& d, std::string_view comment) {
  std::string who = d.hostname.empty() ? (d.node.empty() ? "unknown machine" : d.node) : d.hostname;
  return fmt::format("{} kiln: {} ({}) {} {}\n", comment, OneLine(who), mac.ToString(),
                     d.wait.empty() ? "boots" : "waits to", BootTargetName(d.target));
}

// Inside a GRUB double-quoted string: no quote, backslash or $ expansion.
std::string GrubQuoted(const std::string& text) {
  std::string out;
  for (char c : OneLine(text))
    if (c != '"' && c != '\\' && c != '$') out += c;
  return out;
}

std::string_view Mode(BootTarget t) {
  switch (t) {
    case BootTarget::kInstall: return "install";
    case BootTarget::kDiscover: return "discover";
    case BootTarget::kRescue: return "rescue";
    case BootTarget::kLocalboot: return "localboot";
  }
  return "discover";
}

std::string JoinPath(const std::string& base, const std::string& rel) {
  std::string b = base;
  while (!b.empty() && b.back() == '/') b.pop_back();
  std::string r = rel;
  while (!r.empty() && r.front() == '/') r.erase(0, 1);
  return b + "/" + r;
}

}  // namespace

std::string_view BootTargetName(BootTarget t) {
  return Mode(t);
}

Result<BootTarget> ParseBootTarget(std::string_view text) {
  if (text == "install") return BootTarget::kInstall;
  if (text == "localboot") return BootTarget::kLocalboot;
  if (text == "discover") return BootTarget::kDiscover;
  if (text == "rescue") return BootTarget::kRescue;
  return InvalidArgument(fmt::format(
      "unknown boot target \"{}\" (expected install, localboot, discover or rescue)", text));
}

std::string ServerUrlFor(const BootSettings& s, const std::string& local_ip) {
  if (!s.server_url.empty()) {
    std::string u = s.server_url;
    while (!u.empty() && u.back() == '/') u.pop_back();
    return u;
  }
  if (local_ip.find(':') != std::string::npos)
    return fmt::format("http://[{}]:{}", local_ip, s.http_port);
  return fmt::format("http://{}:{}", local_ip, s.http_port);
}

std::string KernelCommandLine(const Mac& mac, const BootDecision& d, const BootSettings& s,
                              const std::string& server_url, bool with_bootif) {
  std::string args = fmt::format("kiln.server={} kiln.mode={}", server_url, Mode(d.target));
  if (!d.node.empty()) args += " kiln.node=" + d.node;
  if (!d.token.empty() && d.target != BootTarget::kRescue) args += " kiln.token=" + d.token;
  if (with_bootif) args += " BOOTIF=01-" + mac.Dashed();
  if (!s.kernel_args.empty()) args += " " + OneLine(s.kernel_args);
  if (!d.kernel_args.empty()) args += " " + OneLine(d.kernel_args);
  return args;
}

std::string RenderPxelinux(const Mac& mac, const BootDecision& d, const BootSettings& s,
                           const std::string& server_url) {
  std::string out = Header(mac, d, "#");
  if (!d.wait.empty()) {
    // PXELINUX cannot loop: show why, wait 30 s, reboot into PXE again.
    out += fmt::format(
        "SAY kiln: {}; rebooting in 30 seconds to ask again\n"
        "DEFAULT wait\n"
        "PROMPT 1\n"
        "TIMEOUT 300\n"
        "LABEL wait\n"
        "  COM32 reboot.c32\n",
        OneLine(d.wait));
    return out;
  }
  if (d.target == BootTarget::kLocalboot) {
    out +=
        "DEFAULT local\n"
        "PROMPT 0\n"
        "TIMEOUT 0\n"
        "LABEL local\n"
        "  LOCALBOOT 0\n";
    return out;
  }
  // IPAPPEND 2 makes PXELINUX add BOOTIF itself.
  out += fmt::format(
      "DEFAULT kiln\n"
      "PROMPT 0\n"
      "TIMEOUT 0\n"
      "LABEL kiln\n"
      "  KERNEL {}\n"
      "  INITRD {}\n"
      "  APPEND {}\n"
      "  IPAPPEND 2\n",
      s.kernel, s.initrd, KernelCommandLine(mac, d, s, server_url, /*with_bootif=*/false));
  return out;
}

std::string RenderPxelinuxDefault() {
  return "# kiln: this machine has no configuration of its own; boot the local disk\n"
         "DEFAULT local\n"
         "PROMPT 0\n"
         "TIMEOUT 0\n"
         "LABEL local\n"
         "  LOCALBOOT 0\n";
}

std::string RenderGrub(const Mac& mac, const BootDecision& d, const BootSettings& s,
                       const std::string& server_url) {
  std::string out = Header(mac, d, "#");
  out += "set timeout=0\nset default=0\n";
  if (!d.wait.empty()) {
    out += fmt::format(
        "menuentry \"kiln: waiting for an install slot\" {{\n"
        "  echo \"kiln: {}; rebooting in 30 seconds to ask again\"\n"
        "  sleep 30\n"
        "  reboot\n"
        "}}\n",
        GrubQuoted(d.wait));
    return out;
  }
  if (d.target == BootTarget::kLocalboot) {
    // Back to the firmware, which tries its next boot option (the disk).
    out += "menuentry \"kiln: boot the local disk\" {\n  exit\n}\n";
    return out;
  }
  out += fmt::format(
      "menuentry \"kiln: {}\" {{\n"
      "  echo \"kiln: loading the install environment\"\n"
      "  linux /{} {}\n"
      "  initrd /{}\n"
      "}}\n",
      Mode(d.target), s.kernel, KernelCommandLine(mac, d, s, server_url), s.initrd);
  return out;
}

std::string RenderGrubDispatcher() {
  return "# kiln: every machine loads the configuration kiln renders for its MAC\n"
         "set timeout=0\n"
         "if [ -n \"${net_default_mac}\" ]; then\n"
         "  configfile /grub/kiln/${net_default_mac}.cfg\n"
         "fi\n"
         "echo \"kiln: no configuration for this machine; trying the next boot device\"\n"
         "sleep 5\n"
         "exit\n";
}

std::string RenderIpxe(const Mac& mac, const BootDecision& d, const BootSettings& s,
                       const std::string& server_url) {
  std::string out = "#!ipxe\n" + Header(mac, d, "#");
  if (!d.wait.empty()) {
    // Wait in iPXE and fetch this script again: no reboot, no lost DHCP lease.
    out += fmt::format(
        "echo kiln: {}; asking again in 30 seconds\n"
        "sleep 30\n"
        "chain --autofree {}?mac={}\n",
        OneLine(d.wait), JoinPath(server_url, "boot/ipxe"), mac.ToString());
    return out;
  }
  if (d.target == BootTarget::kLocalboot) {
    // Ends iPXE; the firmware goes on to the next boot device.
    out += "exit\n";
    return out;
  }
  // initrd=initrd.img names the initrd for EFI kernels (iPXE's EFI loader
  // hands it over by that name); BIOS kernels ignore it.
  out += fmt::format(
      "kernel {} initrd=initrd.img {}\n"
      "initrd --name initrd.img {}\n"
      "boot\n",
      JoinPath(server_url, "boot/files/" + s.kernel), KernelCommandLine(mac, d, s, server_url),
      JoinPath(server_url, "boot/files/" + s.initrd));
  return out;
}

std::string RenderIpxeChain(const std::string& server_url) {
  std::string url = JoinPath(server_url, "boot/ipxe") +
                    "?mac=${netX/mac:hexhyp}&platform=${platform}&arch=${buildarch}";
  return fmt::format(
      "#!ipxe\n"
      "# kiln: fetch the script rendered for this machine's MAC\n"
      ":retry\n"
      "chain --autofree {} || goto failed\n"
      "exit\n"
      ":failed\n"
      "echo kiln: cannot fetch the boot script from {}, retrying in 5 seconds\n"
      "sleep 5\n"
      "goto retry\n",
      url, server_url);
}

}  // namespace kiln::pxe
