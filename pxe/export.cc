#include "pxe/export.h"

#include "common/strings.h"
#include "pxe/boot_content.h"

namespace kiln::pxe {

std::map<std::string, std::string> RenderExportFiles(const std::vector<ExportEntry>& entries,
                                                     const BootSettings& settings,
                                                     const std::string& server_url) {
  std::map<std::string, std::string> files;
  files["pxelinux.cfg/default"] = RenderPxelinuxDefault();
  files["grub/grub.cfg"] = RenderGrubDispatcher();
  files["grub/x86_64-efi/grub.cfg"] = RenderGrubDispatcher();
  for (const auto& e : entries) {
    files["pxelinux.cfg/01-" + e.mac.Dashed()] =
        RenderPxelinux(e.mac, e.decision, settings, server_url);
    files["grub/kiln/" + e.mac.ToString() + ".cfg"] =
        RenderGrub(e.mac, e.decision, settings, server_url);
  }
  return files;
}

bool IsExportedConfig(const std::string& path) { return MatchDynamic(path).has_value(); }

}  // namespace kiln::pxe
