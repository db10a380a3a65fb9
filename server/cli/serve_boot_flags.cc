#include "server/cli/serve_boot_flags.h"

namespace kiln::cli {

void AddBootFlags(CLI::App* cmd, BootOptions* b) {
  auto* g = "Network boot";
  cmd->add_option("--interface", b->interface,
                  "the boot network's interface: TFTP listens on its IPv4 address (port 69) and "
                  "dnsmasq answers DHCP there")
      ->group(g);
  cmd->add_option("--tftp", b->tftp,
                  "TFTP address ADDR:PORT (port 69 if only ADDR), or off (default: the "
                  "--interface address, else off)")
      ->group(g);
  cmd->add_option("--dhcp", b->dhcp,
                  "proxy (beside the site's DHCP server), full (an isolated network; needs "
                  "--dhcp-range) or off (default: proxy with --interface, else off)")
      ->group(g)
      ->check(CLI::IsMember({"proxy", "full", "off"}));
  cmd->add_option("--dhcp-range", b->dhcp_ranges,
                  "with --dhcp full: START,END[,NETMASK][,LEASE], as dnsmasq takes it; repeatable")
      ->group(g);
  cmd->add_flag("--dhcp-log", b->dhcp_log, "log every DHCP packet dnsmasq answers")->group(g);
  cmd->add_option("--dnsmasq", b->dnsmasq, "the dnsmasq program to supervise")
      ->capture_default_str()
      ->group(g);
  cmd->add_option("--boot-dir", b->boot_dir,
                  "the boot tree served over TFTP and /boot/files (default: DATA/boot)")
      ->group(g);
  cmd->add_option("--boot-kernel", b->settings.kernel,
                  "the install environment's kernel, relative to the boot tree")
      ->capture_default_str()
      ->group(g);
  cmd->add_option("--boot-initrd", b->settings.initrd,
                  "the install environment's initrd, relative to the boot tree (kiln initrd build)")
      ->capture_default_str()
      ->group(g);
  cmd->add_option("--kernel-args", b->settings.kernel_args,
                  "extra kernel arguments for every install, discover and rescue boot, e.g. "
                  "console=ttyS0,115200")
      ->group(g);
  cmd->add_option("--advertise-url", b->settings.server_url,
                  "the URL machines use to reach this server (default: http://<the address "
                  "they reached>:<HTTP port>)")
      ->group(g);
  cmd->add_option("--bios-loader", b->bios_loader,
                  "what BIOS firmware loads over TFTP: undionly.kpxe (iPXE, then the script over "
                  "HTTP) or pxelinux.0 (PXELINUX and everything over TFTP, also for BIOS machines "
                  "whose PXE ROM is iPXE)")
      ->capture_default_str()
      ->group(g);
  cmd->add_option("--uefi-loader", b->uefi_loader,
                  "what UEFI firmware loads over TFTP: ipxe.efi, snponly.efi, or shimx64.efi "
                  "(Secure Boot: shim, then grubx64.efi)")
      ->capture_default_str()
      ->group(g);
  cmd->add_option("--tftp-max-blksize", b->tftp_limits.max_blksize,
                  "largest TFTP block size granted (RFC 2348)")
      ->capture_default_str()
      ->check(CLI::Range(512, 65464))
      ->group(g);
  cmd->add_option("--tftp-max-windowsize", b->tftp_limits.max_windowsize,
                  "largest TFTP window granted (RFC 7440)")
      ->capture_default_str()
      ->check(CLI::Range(1, 1024))
      ->group(g);
  cmd->add_option_function<int>(
         "--tftp-timeout-ms",
         [b](int ms) { b->tftp_limits.default_timeout = std::chrono::milliseconds(ms); },
         "first TFTP retransmission timeout when the client sets none (doubles per retry; "
         "default 1000)")
      ->check(CLI::Range(10, 255000))
      ->group(g);
  cmd->add_option("--tftp-retries", b->tftp_limits.max_retries,
                  "TFTP retransmissions without progress before a transfer is dropped")
      ->capture_default_str()
      ->check(CLI::Range(1, 50))
      ->group(g);
}

}  // namespace kiln::cli
