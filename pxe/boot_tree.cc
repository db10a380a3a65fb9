#include "pxe/boot_tree.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

#include "common/file_util.h"

namespace kiln::pxe {
namespace {

// Write to a temporary name, then rename: a reader never sees half a boot
// loader. No fsync: these files come from packages, and a copy torn by a
// crash differs from its source, so the next start copies it again.
Status ReplaceFile(const std::string& dest, const std::string& bytes) {
  std::string tmp = dest + ".kiln-tmp";
  UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!fd.valid()) return ErrnoError("create " + tmp, errno);
  KILN_RETURN_IF_ERROR(WriteAll(fd.get(), bytes, tmp));
  fd.Reset();
  if (::rename(tmp.c_str(), dest.c_str()) != 0) return ErrnoError("rename " + dest, errno);
  return Status::Ok();
}

}  // namespace

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
      KILN_RETURN_IF_ERROR(ReplaceFile(dest, bytes));
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
