#include "pxe/boot_tree.h"

#include <unistd.h>

#include "common/file_util.h"

namespace kiln::pxe {

const std::vector<StaticBootFile>& StaticBootFiles() {
  static const std::vector<StaticBootFile> files = [] {
    const std::string bios = "/usr/lib/syslinux/modules/bios/";
    const std::string grub = "/usr/lib/grub/x86_64-efi-signed/grubnetx64.efi.signed";
    std::vector<StaticBootFile> f = {
        {"pxelinux.0", {"/usr/lib/PXELINUX/pxelinux.0"}, "pxelinux", true},
        {"lpxelinux.0", {"/usr/lib/PXELINUX/lpxelinux.0"}, "pxelinux", false},
        {"ldlinux.c32", {bios + "ldlinux.c32"}, "syslinux-common", true},
        {"undionly.kpxe", {"/usr/lib/ipxe/undionly.kpxe"}, "ipxe", true},
        {"ipxe.efi", {"/usr/lib/ipxe/ipxe.efi"}, "ipxe", true},
        {"snponly.efi", {"/usr/lib/ipxe/snponly.efi"}, "ipxe", false},
        {"syslinux.efi", {"/usr/lib/SYSLINUX.EFI/efi64/syslinux.efi"}, "syslinux-efi", false},
        {"ldlinux.e64", {"/usr/lib/syslinux/modules/efi64/ldlinux.e64"}, "syslinux-efi", false},
        {"grubnetx64.efi", {grub}, "grub-efi-amd64-signed", false},
        // shim loads grubx64.efi from the TFTP root.
        {"grubx64.efi", {grub}, "grub-efi-amd64-signed", false},
        {"shimx64.efi", {"/usr/lib/shim/shimx64.efi.signed"}, "shim-signed", false},
    };
    for (const char* m : {"libcom32.c32", "libutil.c32", "menu.c32", "chain.c32", "reboot.c32"})
      f.push_back({m, {bios + m}, "syslinux-common", false});
    return f;
  }();
  return files;
}

Result<std::vector<InstalledFile>> InstallStaticBootFiles(const std::string& root,
                                                          const std::string& source_prefix) {
  KILN_RETURN_IF_ERROR(MakeDirs(root));
  std::vector<InstalledFile> out;
  for (const auto& f : StaticBootFiles()) {
    InstalledFile r;
    r.name = f.name;
    r.required = f.required;
    r.package = f.package;
    for (const auto& src : f.sources) {
      std::string path = source_prefix + src;
      if (::access(path.c_str(), R_OK) == 0) {
        r.source = path;
        break;
      }
    }
    if (r.source.empty()) {
      out.push_back(r);
      continue;
    }
    KILN_ASSIGN_OR_RETURN(std::string bytes, ReadFile(r.source));
    std::string dest = root + "/" + f.name;
    auto existing = ReadFile(dest);
    if (existing.ok() && *existing == bytes) {
      r.state = InstalledFile::State::kUnchanged;
    } else {
      KILN_RETURN_IF_ERROR(WriteFileAtomic(dest, bytes, 0644));
      r.state = InstalledFile::State::kInstalled;
    }
    out.push_back(r);
  }
  return out;
}

std::string MissingRequired(const std::vector<InstalledFile>& files) {
  std::string s;
  for (const auto& f : files) {
    if (!f.required || f.state != InstalledFile::State::kMissing) continue;
    if (!s.empty()) s += ", ";
    s += f.name + " (" + f.package + ")";
  }
  return s;
}

}  // namespace kiln::pxe
