#include "server/api_boot.h"

#include <cctype>

#include <fmt/format.h>

#include "common/log.h"
#include "pxe/boot_config.h"
#include "pxe/tftp_path.h"
#include "server/boot_service.h"
#include "server/http/router.h"

namespace kiln {
namespace {

// The URL the machine used to reach us, from its Host header, so the
// script's URLs work from wherever it stands. Anything odd in Host (it is
// client input that ends up in a script) falls back to the settings.
std::string UrlFromRequest(const http::HttpRequest& req, BootService& boot) {
  const pxe::BootSettings& s = boot.settings();
  if (!s.server_url.empty()) return pxe::ServerUrlFor(s, "");
  std::string host = req.Header("host");
  bool ok = !host.empty() && host.size() < 256;
  for (char c : host)
    ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == ':' || c == '-' ||
                c == '[' || c == ']');
  if (ok) return "http://" + host;
  return boot.DefaultUrl();
}

std::string ClientIp(const http::HttpRequest& req) {
  std::string r = req.remote;
  size_t colon = r.rfind(':');
  if (colon != std::string::npos) r.resize(colon);
  if (r.size() > 2 && r.front() == '[' && r.back() == ']') r = r.substr(1, r.size() - 2);
  return r;
}

http::HttpResponse IpxeText(std::string script, int status = 200) {
  return http::HttpResponse::Text(std::move(script), status, "text/plain; charset=utf-8");
}

}  // namespace

void RegisterBootRoutes(http::Router& router, BootService& boot) {
  using http::Access;
  using http::HttpRequest;
  using http::HttpResponse;

  router.AddSync(
      "GET", "/boot/ipxe",
      [&boot](HttpRequest& req) {
        std::string url = UrlFromRequest(req, boot);
        if (!req.HasQuery("mac")) return IpxeText(pxe::RenderIpxeChain(url));
        auto mac = pxe::ParseMac(req.Query("mac"));
        // iPXE prints the body of a failed fetch; keep it readable.
        if (!mac.ok()) return IpxeText("kiln: " + mac.status().message() + "\n", 400);
        pxe::BootQuery q;
        q.mac = *mac;
        q.client_ip = ClientIp(req);
        q.via = "ipxe";
        std::string platform = req.Query("platform");
        if (platform == "pcbios") q.firmware = "bios";
        if (platform == "efi") q.firmware = "efi";
        auto d = boot.resolver().Resolve(q);
        if (!d.ok()) {
          log::Warn("boot", "cannot decide what to boot",
                    {{"mac", mac->ToString()}, {"error", d.status().ToString()}});
          return IpxeText("kiln: " + d.status().message() + "\n", 503);
        }
        log::Info("boot", "config rendered",
                  {{"mac", mac->ToString()}, {"node", d->node},
                   {"target", pxe::BootTargetName(d->target)}, {"via", "ipxe"},
                   {"client", q.client_ip}});
        return IpxeText(pxe::RenderIpxe(*mac, *d, boot.settings(), url));
      },
      {.access = Access::kPublic, .max_body = 0, .name = "/boot/ipxe"});

  router.AddSync(
      "GET", "/boot/files/{path...}",
      [&boot](HttpRequest& req) {
        auto path = pxe::NormalizeTftpPath(req.Param("path"));
        if (!path.ok()) return HttpResponse::Error(path.status());
        auto f = pxe::OpenBeneath(boot.content().root_fd(), *path);
        if (!f.ok()) return HttpResponse::Error(f.status());
        uint64_t size = f->size;
        return HttpResponse::File(f->fd.Release(), 0, size, "application/octet-stream");
      },
      {.access = Access::kPublic, .max_body = 0, .name = "/boot/files"});
}

}  // namespace kiln
