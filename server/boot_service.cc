#include "server/boot_service.h"

#include <fmt/format.h>

#include "common/file_util.h"
#include "common/log.h"
#include "pxe/boot_tree.h"
#include "pxe/netif.h"
#include "server/http/listen_address.h"
#include "server/metrics.h"

namespace kiln {

Result<std::unique_ptr<BootService>> BootService::Create(const BootOptions& options,
                                                         const std::string& data_dir,
                                                         pxe::BootResolver* resolver) {
  std::unique_ptr<BootService> b(new BootService());
  b->options_ = options;
  b->data_dir_ = data_dir;
  b->resolver_ = resolver;
  if (b->options_.boot_dir.empty()) b->options_.boot_dir = data_dir + "/boot";

  // Decide what runs before touching anything, so bad flags fail fast.
  std::string dhcp = options.dhcp;
  if (dhcp.empty()) dhcp = options.interface.empty() ? "off" : "proxy";
  KILN_ASSIGN_OR_RETURN(b->dhcp_mode_, pxe::ParseDhcpMode(dhcp));
  if (b->dhcp_mode_ != pxe::DhcpMode::kOff && options.interface.empty())
    return InvalidArgument(fmt::format("--dhcp {} needs --interface (the boot network)", dhcp));
  if (b->dhcp_mode_ != pxe::DhcpMode::kFull && !options.dhcp_ranges.empty())
    return InvalidArgument("--dhcp-range is only for --dhcp full");
  if (!options.interface.empty()) {
    KILN_ASSIGN_OR_RETURN(auto info, pxe::LookupInterface(options.interface));
    b->server_ip_ = info.ipv4;
  }
  if (options.tftp == "off") {
    b->tftp_listen_.clear();
  } else if (!options.tftp.empty()) {
    KILN_ASSIGN_OR_RETURN(auto addr, http::ParseListenAddress(options.tftp));
    b->tftp_listen_ = addr.ToString();
  } else if (!b->server_ip_.empty()) {
    b->tftp_listen_ = b->server_ip_ + ":69";
  }
  if (b->dhcp_mode_ != pxe::DhcpMode::kOff && b->tftp_listen_.empty())
    return InvalidArgument("DHCP sends machines to kiln's TFTP server, but --tftp is off");

  auto installed = pxe::InstallStaticBootFiles(b->options_.boot_dir);
  if (!installed.ok()) return installed.status().WithContext("boot tree");
  b->missing_ = pxe::MissingRequired(*installed);
  if (!b->missing_.empty())
    log::Warn("boot", "boot loaders missing; install the Debian packages named",
              {{"missing", b->missing_}});
  KILN_RETURN_IF_ERROR(MakeDirs(b->options_.boot_dir + "/kiln"));
  KILN_ASSIGN_OR_RETURN(b->content_, pxe::BootContent::Create(b->options_.boot_dir,
                                                              options.settings, resolver));
  return b;
}

BootService::~BootService() { Stop(); }

pxe::BootSettings BootService::settings() const {
  pxe::BootSettings s = content_->settings();
  s.http_port = http_port_.load();
  return s;
}

std::string BootService::DefaultUrl() const {
  return pxe::ServerUrlFor(settings(), server_ip_.empty() ? "127.0.0.1" : server_ip_);
}

Status BootService::Start(uint16_t http_port) {
  http_port_.store(http_port);
  content_->set_http_port(http_port);
  if (!tftp_listen_.empty()) {
    KILN_ASSIGN_OR_RETURN(auto addr, http::ParseListenAddress(tftp_listen_));
    auto sock = http::BindSocket(addr, SOCK_DGRAM);
    if (!sock.ok()) return sock.status().WithContext("tftp");
    pxe::TftpServerOptions topts;
    topts.limits = options_.tftp_limits;
    KILN_ASSIGN_OR_RETURN(tftp_, pxe::TftpServer::Start(std::move(*sock), topts, content_.get()));
    tftp_listen_ = tftp_->address();
  } else {
    log::Info("tftp", "off", {{"why", "no --interface or --tftp"}});
  }
  if (dhcp_mode_ != pxe::DhcpMode::kOff) KILN_RETURN_IF_ERROR(StartDhcp(http_port));
  return Status::Ok();
}

Status BootService::StartDhcp(uint16_t http_port) {
  pxe::DnsmasqConfig c;
  c.mode = dhcp_mode_;
  c.interface = options_.interface;
  KILN_ASSIGN_OR_RETURN(auto info, pxe::LookupInterface(options_.interface));
  c.server_ip = info.ipv4;
  c.network = info.network;
  c.netmask = info.netmask;
  c.ranges = options_.dhcp_ranges;
  std::string url = options_.settings.server_url.empty()
                        ? fmt::format("http://{}:{}", info.ipv4, http_port)
                        : options_.settings.server_url;
  while (!url.empty() && url.back() == '/') url.pop_back();
  c.ipxe_url = url + "/boot/ipxe";
  c.bios_loader = options_.bios_loader;
  c.efi_loader = options_.uefi_loader;
  c.log_dhcp = options_.dhcp_log;
  std::string dir = data_dir_ + "/dnsmasq";
  KILN_RETURN_IF_ERROR(MakeDirs(dir, 0755));
  c.lease_file = dir + "/leases";
  if (dhcp_mode_ == pxe::DhcpMode::kFull) c.ipv6 = info.ipv6;
  KILN_ASSIGN_OR_RETURN(std::string text, pxe::RenderDnsmasqConfig(c));
  std::string conf = dir + "/dnsmasq.conf";
  KILN_RETURN_IF_ERROR(WriteFileAtomic(conf, text, 0644));
  KILN_RETURN_IF_ERROR(pxe::TestDnsmasqConfig(options_.dnsmasq, conf));

  pxe::SupervisorOptions s;
  s.name = "dnsmasq";
  s.argv = {options_.dnsmasq, "--keep-in-foreground", "--conf-file=" + conf, "--log-facility=-"};
  s.on_line = [](std::string_view line) {
    // dnsmasq prefixes its lines with "dnsmasq: " or "dnsmasq-dhcp: ".
    log::Info("dnsmasq", "log", {{"line", line}});
  };
  KILN_ASSIGN_OR_RETURN(dnsmasq_, pxe::Supervisor::Start(std::move(s)));
  log::Info("dhcp", "dnsmasq supervised",
            {{"mode", pxe::DhcpModeName(dhcp_mode_)}, {"interface", options_.interface},
             {"config", conf}});
  return Status::Ok();
}

void BootService::Stop() {
  if (dnsmasq_) dnsmasq_->Stop();
  if (tftp_) tftp_->Stop();
}

Json BootService::TftpStatus() const {
  if (!tftp_) return {{"state", "off"}};
  auto st = tftp_->stats();
  return {{"state", "running"},  {"listen", tftp_listen_},    {"active", st.active},
          {"completed", st.completed}, {"failed", st.failed}, {"refused", st.refused},
          {"bytes", st.bytes}};
}

Json BootService::DhcpStatus() const {
  if (dhcp_mode_ == pxe::DhcpMode::kOff) return {{"state", "off"}};
  Json j = dnsmasq_ ? dnsmasq_->Describe() : Json{{"state", "not started"}};
  j["mode"] = pxe::DhcpModeName(dhcp_mode_);
  j["interface"] = options_.interface;
  return j;
}

Json BootService::TreeStatus() const {
  Json j = {{"dir", options_.boot_dir},
            {"kernel", content_->settings().kernel},
            {"initrd", content_->settings().initrd}};
  j["state"] = missing_.empty() ? "ok" : "incomplete";
  if (!missing_.empty()) j["missing"] = missing_;
  return j;
}

void BootService::RegisterMetrics(Metrics& metrics) {
  auto stat = [this](uint64_t pxe::TftpStats::*field) {
    return [this, field]() -> double { return tftp_ ? static_cast<double>(tftp_->stats().*field) : 0; };
  };
  metrics.Gauge("kiln_tftp_transfers_active", "TFTP transfers in progress", {},
                stat(&pxe::TftpStats::active));
  metrics.Gauge("kiln_tftp_transfers_completed", "TFTP transfers completed since start", {},
                stat(&pxe::TftpStats::completed));
  metrics.Gauge("kiln_tftp_transfers_failed", "TFTP transfers that failed since start", {},
                stat(&pxe::TftpStats::failed));
  metrics.Gauge("kiln_tftp_requests_refused", "TFTP requests answered with an error since start",
                {}, stat(&pxe::TftpStats::refused));
  metrics.Gauge("kiln_tftp_bytes_sent", "TFTP payload bytes acknowledged by clients since start",
                {}, stat(&pxe::TftpStats::bytes));
  metrics.Gauge("kiln_dhcp_dnsmasq_starts", "times dnsmasq was started", {}, [this]() -> double {
    return dnsmasq_ ? static_cast<double>(dnsmasq_->starts()) : 0;
  });
}

}  // namespace kiln
