#include "pxe/boot_content.h"

#include "common/log.h"
#include "common/strings.h"

namespace kiln::pxe {

std::optional<DynamicFile> MatchDynamic(const std::string& path) {
  using K = DynamicFile::Kind;
  if (StartsWith(path, "pxelinux.cfg/")) {
    std::string name = path.substr(13);
    if (name == "default") return DynamicFile{K::kPxelinuxDefault, std::nullopt};
    // "01-" is the ARP hardware type for Ethernet.
    if (StartsWith(name, "01-")) {
      auto mac = ParseMac(name.substr(3));
      if (mac.ok()) return DynamicFile{K::kPxelinuxMac, *mac};
    }
    return DynamicFile{K::kPxelinuxOther, std::nullopt};
  }
  if (path == "grub/grub.cfg" || path == "grub/x86_64-efi/grub.cfg" || path == "grub.cfg")
    return DynamicFile{K::kGrubDispatcher, std::nullopt};
  if (StartsWith(path, "grub/kiln/") && EndsWith(path, ".cfg")) {
    auto mac = ParseMac(path.substr(10, path.size() - 14));
    if (mac.ok()) return DynamicFile{K::kGrubMac, *mac};
  }
  if (StartsWith(path, "grub/grub.cfg-01-")) {
    auto mac = ParseMac(path.substr(17));
    if (mac.ok()) return DynamicFile{K::kGrubMac, *mac};
  }
  return std::nullopt;
}

Result<std::unique_ptr<BootContent>> BootContent::Create(const std::string& root,
                                                         BootSettings settings,
                                                         BootResolver* resolver) {
  KILN_ASSIGN_OR_RETURN(auto files, DirectoryContent::Create(root));
  return std::unique_ptr<BootContent>(
      new BootContent(root, std::move(settings), resolver, std::move(files)));
}

Result<std::optional<std::string>> BootContent::Render(const std::string& path,
                                                       const std::string& local_ip,
                                                       const std::string& client_ip) {
  auto dyn = MatchDynamic(path);
  if (!dyn) return std::optional<std::string>();
  using K = DynamicFile::Kind;
  switch (dyn->kind) {
    case K::kPxelinuxDefault: return std::optional<std::string>(RenderPxelinuxDefault());
    case K::kGrubDispatcher: return std::optional<std::string>(RenderGrubDispatcher());
    case K::kPxelinuxOther: return NotFound(path + ": no such file");
    case K::kPxelinuxMac:
    case K::kGrubMac: break;
  }
  bool grub = dyn->kind == K::kGrubMac;
  BootQuery q{*dyn->mac, client_ip, grub ? "grub" : "pxelinux", grub ? "efi" : "bios"};
  KILN_ASSIGN_OR_RETURN(BootDecision d, resolver_->Resolve(q));
  BootSettings s = settings_;
  s.http_port = http_port_.load();
  std::string url = ServerUrlFor(s, local_ip);
  log::Info("boot", "config rendered",
            {{"mac", q.mac.ToString()}, {"node", d.node}, {"target", BootTargetName(d.target)},
             {"via", q.via}, {"client", client_ip}});
  return std::optional<std::string>(grub ? RenderGrub(q.mac, d, s, url)
                                         : RenderPxelinux(q.mac, d, s, url));
}

Result<TftpFile> BootContent::Open(const TftpRequestInfo& request) {
  auto rendered = Render(request.path, request.local_ip, request.client_ip);
  if (!rendered.ok()) {
    // A config that cannot be rendered must not stop the boot: PXELINUX
    // falls back to pxelinux.cfg/default on "file not found".
    if (rendered.status().code() != Code::kNotFound)
      log::Warn("boot", "cannot render boot config",
                {{"file", request.path}, {"client", request.client_ip},
                 {"error", rendered.status().ToString()}});
    return NotFound(request.path + ": no such file");
  }
  if (*rendered) {
    TftpFile f;
    f.size = (*rendered)->size();
    f.source = std::make_unique<MemorySource>(std::move(**rendered));
    return f;
  }
  return files_->Open(request);
}

}  // namespace kiln::pxe
