#include "agent/bootloader.h"

#include <dirent.h>
#include <fmt/format.h>

#include <algorithm>
#include <regex>

#include "agent/grub_efi.h"
#include "agent/initrd/grub_image.h"
#include "common/file_util.h"
#include "common/strings.h"

namespace kiln::agent {
namespace {

// "6.1.0-13-amd64" < "6.1.0-9-amd64" as strings; compare digit runs as numbers.
bool VersionLess(const std::string& a, const std::string& b) {
  size_t i = 0, j = 0;
  while (i < a.size() && j < b.size()) {
    if (std::isdigit(static_cast<unsigned char>(a[i])) &&
        std::isdigit(static_cast<unsigned char>(b[j]))) {
      size_t i2 = i, j2 = j;
      while (i2 < a.size() && std::isdigit(static_cast<unsigned char>(a[i2]))) ++i2;
      while (j2 < b.size() && std::isdigit(static_cast<unsigned char>(b[j2]))) ++j2;
      uint64_t x = ParseUint(a.substr(i, std::min<size_t>(i2 - i, 18))).value_or(0);
      uint64_t y = ParseUint(b.substr(j, std::min<size_t>(j2 - j, 18))).value_or(0);
      if (x != y) return x < y;
      i = i2;
      j = j2;
    } else {
      if (a[i] != b[j]) return a[i] < b[j];
      ++i;
      ++j;
    }
  }
  return a.size() - i < b.size() - j;
}

}  // namespace

Result<KernelFiles> FindKernel(const std::string& boot_dir) {
  DIR* d = ::opendir(boot_dir.c_str());
  if (!d) return NotFound(fmt::format("{}: cannot read it: the image has no /boot", boot_dir));
  std::vector<std::string> versions;
  std::vector<std::string> names;
  while (dirent* e = ::readdir(d)) names.push_back(e->d_name);
  ::closedir(d);
  for (const auto& n : names)
    if (StartsWith(n, "vmlinuz-")) versions.push_back(n.substr(8));
  if (versions.empty())
    return NotFound(fmt::format("{} has no vmlinuz-*: the image has no kernel to boot", boot_dir));
  std::sort(versions.begin(), versions.end(), VersionLess);
  KernelFiles k;
  k.kernel = "vmlinuz-" + versions.back();
  if (std::find(names.begin(), names.end(), "initrd.img-" + versions.back()) != names.end())
    k.initrd = "initrd.img-" + versions.back();
  return k;
}

std::string ExtlinuxConfig(const KernelFiles& k, const std::string& kernel_dir,
                           const std::string& root_uuid, const std::string& args) {
  std::string s =
      "# Written by kiln-agent at install time.\n"
      "DEFAULT linux\nTIMEOUT 0\nPROMPT 0\n\n"
      "LABEL linux\n";
  s += fmt::format("  LINUX {}{}\n", kernel_dir, k.kernel);
  if (!k.initrd.empty()) s += fmt::format("  INITRD {}{}\n", kernel_dir, k.initrd);
  s += fmt::format("  APPEND root=UUID={} ro{}{}\n", root_uuid, args.empty() ? "" : " ", args);
  return s;
}

const PartitionSpec* EspPartition(const DiskPlan& plan) {
  const PartitionSpec* boot = plan.BootPartition();
  const DiskSpec* boot_disk = boot ? plan.DiskOf(boot) : nullptr;
  const PartitionSpec* first = nullptr;
  for (const auto& d : plan.disks)
    for (const auto& p : d.parts) {
      if (p.type != "esp") continue;
      if (&d == boot_disk) return &p;
      if (!first) first = &p;
    }
  return first;
}

std::string BootloaderDescription(const std::string& firmware) {
  return firmware == "uefi" ? "installing GRUB for UEFI" : "installing EXTLINUX";
}

namespace {

Result<std::string> FsUuid(CommandRunner* runner, const PartitionSpec& p) {
  auto blkid = runner->Output({"blkid", p.device});
  static const std::regex kUuid("UUID=\"([^\"]+)\"");
  std::smatch m;
  if (!blkid.ok() || !std::regex_search(*blkid, m, kUuid))
    return FailedPrecondition(fmt::format("{} ({}) has no filesystem UUID: was it formatted?",
                                          p.device, p.mount.empty() ? p.name : p.mount));
  return std::string(m[1]);
}

Status InstallGrubEfi(CommandRunner* runner, const DiskPlan& plan, const KernelFiles& k,
                      const std::string& kernel_dir, const std::string& boot_uuid,
                      const std::string& root_uuid, const std::string& args,
                      const BootloaderOptions& opts) {
  const PartitionSpec* esp = EspPartition(plan);
  if (!esp)
    return FailedPrecondition(
        "this machine boots by UEFI and its disk layout has no EFI system partition: add "
        "`part esp size=512M type=esp mount=/boot/efi` to the disk layout");
  if (!esp->fs.empty() && esp->fs != "vfat" && esp->fs != "fat32")  // empty: vfat, implied
    return FailedPrecondition(
        fmt::format("the EFI system partition {} has fs={}: UEFI firmware reads only vfat",
                    esp->name, esp->fs));
  auto image = ReadFile(opts.grub_efi_image);
  if (!image.ok())
    return FailedPrecondition(fmt::format(
        "{}: the install environment has no GRUB EFI image (was it built with --no-uefi?): {}",
        opts.grub_efi_image, image.status().message()));
  auto files =
      EspFiles(std::move(*image), GrubEfiConfig(k, kernel_dir, boot_uuid, root_uuid, args));
  if (!esp->mount.empty() && esp->mount != "none")
    return WriteEspDir(opts.target + esp->mount, files);
  return WriteEspMtools(runner, esp->device, files, opts.scratch_dir);
}

}  // namespace

Status InstallBootloader(CommandRunner* runner, const DiskPlan& plan, const Json& variables,
                         const BootloaderOptions& opts, BootEntry* entry) {
  const PartitionSpec* boot = plan.BootPartition();
  const PartitionSpec* root = nullptr;
  for (const auto& d : plan.disks)
    for (const auto& p : d.parts)
      if (p.mount == "/") root = &p;
  if (!boot || !root) return FailedPrecondition("the plan mounts no / partition: nothing to boot");
  const DiskSpec* disk = plan.DiskOf(boot);
  bool separate_boot = boot->mount == "/boot";

  KILN_ASSIGN_OR_RETURN(std::string uuid, FsUuid(runner, *root));

  KILN_ASSIGN_OR_RETURN(KernelFiles k, FindKernel(opts.target + "/boot"));
  std::string args;
  if (variables.is_object() && variables.contains("CONSOLE") && variables["CONSOLE"].is_string())
    args = "console=" + variables["CONSOLE"].get<std::string>();
  if (!opts.extra_args.empty()) args += (args.empty() ? "" : " ") + opts.extra_args;
  std::string kernel_dir = separate_boot ? "/" : "/boot/";
  if (entry) {
    entry->kernel = opts.target + "/boot/" + k.kernel;
    entry->initrd = k.initrd.empty() ? "" : opts.target + "/boot/" + k.initrd;
    entry->cmdline = fmt::format("root=UUID={} ro{}{}", uuid, args.empty() ? "" : " ", args);
  }
  if (opts.firmware == "uefi") {
    std::string boot_uuid = uuid;
    if (boot != root) {
      KILN_ASSIGN_OR_RETURN(boot_uuid, FsUuid(runner, *boot));
    }
    return InstallGrubEfi(runner, plan, k, kernel_dir, boot_uuid, uuid, args, opts);
  }
  std::string dir = opts.target + "/boot/extlinux";
  KILN_RETURN_IF_ERROR(MakeDirs(dir, 0755));
  KILN_RETURN_IF_ERROR(
      WriteFileAtomic(dir + "/extlinux.conf", ExtlinuxConfig(k, kernel_dir, uuid, args), 0644));
  KILN_RETURN_IF_ERROR(runner->Check({"extlinux", "--install", dir}));

  bool gpt = disk->table == "gpt";
  std::string mbr = opts.syslinux_dir + (gpt ? "/gptmbr.bin" : "/mbr.bin");
  KILN_RETURN_IF_ERROR(runner->Check(
      {"dd", "if=" + mbr, "of=" + disk->device, "bs=440", "count=1", "conv=notrunc"}));
  std::string number = std::to_string(boot->number);
  if (gpt)
    KILN_RETURN_IF_ERROR(
        runner->Check({"sfdisk", "--part-attrs", disk->device, number, "LegacyBIOSBootable"}));
  else
    KILN_RETURN_IF_ERROR(runner->Check({"sfdisk", "--activate", disk->device, number}));
  return Status::Ok();
}

}  // namespace kiln::agent
