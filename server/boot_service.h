#pragma once
// Network boot inside `kiln serve`: the boot tree, the TFTP server, the
// supervised dnsmasq and the HTTP boot routes, wired to the server's
// BootResolver (the node inventory). The pieces live in pxe/; this file
// decides which run and with what settings.
//
// Defaults: with --interface, TFTP listens on that interface's IPv4
// address, port 69, and dnsmasq runs proxy-DHCP there. Without it, TFTP
// and DHCP are off unless asked for (--tftp ADDR:PORT, --dhcp full ...),
// so a development server grabs no privileged port and sends no DHCP.
//
// Lifetime: Create() prepares the boot tree (copying Debian's loaders in)
// before the HTTP server starts; Start() binds TFTP and starts dnsmasq
// once the HTTP port is known; Stop() ends both (idempotent).
// Thread safety: Status() from any thread.

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "common/json.h"
#include "common/status.h"
#include "pxe/boot_config.h"
#include "pxe/boot_content.h"
#include "pxe/dnsmasq_config.h"
#include "pxe/supervisor.h"
#include "pxe/tftp_server.h"

namespace kiln {

class Metrics;

struct BootOptions {
  std::string boot_dir;     // default DATA/boot
  std::string interface;    // the boot network
  std::string tftp;         // "ADDR:PORT", "off", or "" for the default
  std::string dhcp;         // "proxy", "full", "off", or "" for the default
  std::vector<std::string> dhcp_ranges;
  std::string dnsmasq = "dnsmasq";
  bool dhcp_log = false;
  std::string bios_loader = "undionly.kpxe";
  std::string uefi_loader = "ipxe.efi";
  pxe::BootSettings settings;  // kernel, initrd, kernel args, advertised URL
  pxe::tftp::Limits tftp_limits;
};

class BootService {
 public:
  // resolver must outlive the service.
  static Result<std::unique_ptr<BootService>> Create(const BootOptions& options,
                                                     const std::string& data_dir,
                                                     pxe::BootResolver* resolver);
  ~BootService();

  // Binds TFTP and starts dnsmasq. http_port goes into the URLs machines
  // are given (unless --advertise-url set one).
  Status Start(uint16_t http_port);
  void Stop();

  pxe::BootContent& content() { return *content_; }
  pxe::BootResolver& resolver() { return *resolver_; }
  // The settings with the HTTP port filled in once Start() ran.
  pxe::BootSettings settings() const;
  // http://<boot network address or 127.0.0.1>:<port>, or --advertise-url.
  std::string DefaultUrl() const;

  // {"tftp": {...}, "dhcp": {...}, "boot": {...}} for /api/v1/status.
  Json TftpStatus() const;
  Json DhcpStatus() const;
  Json TreeStatus() const;
  void RegisterMetrics(Metrics& metrics);

 private:
  BootService() = default;
  Status StartDhcp(uint16_t http_port);

  BootOptions options_;
  std::string data_dir_;
  pxe::BootResolver* resolver_ = nullptr;
  std::unique_ptr<pxe::BootContent> content_;
  std::unique_ptr<pxe::TftpServer> tftp_;
  std::unique_ptr<pxe::Supervisor> dnsmasq_;
  pxe::DhcpMode dhcp_mode_ = pxe::DhcpMode::kOff;
  std::string tftp_listen_;  // resolved; "" when off
  std::string server_ip_;    // the interface's IPv4 address
  std::string missing_;      // required boot files that are missing
  std::atomic<uint16_t> http_port_{0};
};

}  // namespace kiln
