#include "agent/grub_efi.h"

#include <errno.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <filesystem>
#include <set>

#include "agent/bootloader.h"
#include "agent/initrd/grub_image.h"
#include "common/file_util.h"

namespace kiln::agent {
namespace fs = std::filesystem;
namespace {

// WriteFileAtomic without its fchmod: vfat has no modes, and refuses a
// chmod that its mount options (umask=0077) cannot represent.
Status WriteVfatFile(const std::string& path, std::string_view data) {
  std::string tmp = path + ".kiln-tmp";
  UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!fd.valid()) return ErrnoError("create " + tmp, errno);
  Status s = WriteAll(fd.get(), data, tmp);
  if (s.ok() && ::fsync(fd.get()) != 0) s = ErrnoError("fsync " + tmp, errno);
  fd.Reset();
  if (s.ok() && ::rename(tmp.c_str(), path.c_str()) != 0)
    s = ErrnoError("rename " + tmp + " to " + path, errno);
  if (!s.ok()) ::unlink(tmp.c_str());
  return s;
}

}  // namespace

std::string GrubEfiConfig(const KernelFiles& k, const std::string& kernel_dir,
                          const std::string& boot_uuid, const std::string& root_uuid,
                          const std::string& args) {
  std::string s =
      "# Written by kiln-agent at install time.\n"
      "set timeout=0\nset default=0\n";
  s += fmt::format("search --no-floppy --fs-uuid --set=root {}\n", boot_uuid);
  s += fmt::format("menuentry \"{}\" {{\n", k.kernel);
  s += fmt::format("  linux {}{} root=UUID={} ro{}{}\n", kernel_dir, k.kernel, root_uuid,
                   args.empty() ? "" : " ", args);
  if (!k.initrd.empty()) s += fmt::format("  initrd {}{}\n", kernel_dir, k.initrd);
  s += "}\n";
  return s;
}

std::vector<EspFile> EspFiles(std::string grub_image, std::string grub_cfg) {
  std::string prefix = std::string(initrd::kGrubEfiPrefix).substr(1);  // "EFI/kiln"
  return {EspFile{prefix + "/grub.cfg", std::move(grub_cfg)},
          EspFile{"EFI/BOOT/BOOTX64.EFI", std::move(grub_image)}};
}

Status WriteEspDir(const std::string& dir, const std::vector<EspFile>& files) {
  for (const auto& f : files) {
    std::string path = dir + "/" + f.path;
    std::string parent = fs::path(path).parent_path().string();
    KILN_RETURN_IF_ERROR(MakeDirs(parent, 0755));
    KILN_RETURN_IF_ERROR(WriteVfatFile(path, f.content));
    KILN_RETURN_IF_ERROR(SyncDir(parent));
  }
  return Status::Ok();
}

Status WriteEspMtools(CommandRunner* runner, const std::string& device,
                      const std::vector<EspFile>& files, const std::string& scratch_dir) {
  KILN_RETURN_IF_ERROR(MakeDirs(scratch_dir, 0700));
  struct Cleanup {
    std::string d;
    ~Cleanup() {
      std::error_code ec;
      fs::remove_all(d, ec);
    }
  } cleanup{scratch_dir};
  // No geometry check: the partition is a filesystem, not a floppy.
  SubprocessOptions o{.env = {"MTOOLS_SKIP_CHECK=1"}};
  std::set<std::string> made;
  int n = 0;
  for (const auto& f : files) {
    // Parent directories, outermost first; one that exists already is fine
    // (mmd fails then, and mcopy below fails clearly if it really is missing).
    fs::path rel = fs::path(f.path).parent_path();
    std::string acc;
    for (const auto& part : rel) {
      acc += "/" + part.string();
      if (made.insert(acc).second)
        (void)runner->Run({"mmd", "-D", "s", "-i", device, "::" + acc}, o);
    }
    std::string staged = fmt::format("{}/{}", scratch_dir, n++);
    KILN_RETURN_IF_ERROR(WriteFileAtomic(staged, f.content, 0644));
    KILN_RETURN_IF_ERROR(runner->Check({"mcopy", "-o", "-i", device, staged, "::/" + f.path}, o)
                             .WithContext(fmt::format("writing {} onto the EFI system partition {}",
                                                      f.path, device)));
  }
  return Status::Ok();
}

}  // namespace kiln::agent
