#include "agent/initrd/grub_image.h"

#include <fmt/format.h>
#include <unistd.h>

#include <filesystem>

#include "common/file_util.h"
#include "common/subprocess.h"

namespace kiln::initrd {

const std::vector<std::string>& GrubEfiModules() {
  static const std::vector<std::string> mods = {
      "part_gpt",       "part_msdos",   "fat",     "ext2",      "xfs",        "btrfs",    "search",
      "search_fs_uuid", "search_label", "linux",   "normal",    "configfile", "echo",     "test",
      "gzio",           "efi_gop",      "efi_uga", "all_video", "serial",     "terminal", "sleep"};
  return mods;
}

Result<std::string> BuildGrubEfiImage(const std::string& grub_dir,
                                      const std::string& scratch_path) {
  const std::string mkimage = "grub-mkimage";
  if (!std::filesystem::exists(grub_dir + "/linux.mod"))
    return NotFound(fmt::format(
        "{} has no GRUB EFI modules: install grub-efi-amd64-bin (scripts/bootstrap does), or "
        "leave UEFI out with --no-uefi",
        grub_dir));
  std::vector<std::string> argv = {mkimage,        "--format", "x86_64-efi",
                                   "--directory",  grub_dir,   "--prefix",
                                   kGrubEfiPrefix, "--output", scratch_path};
  for (const auto& m : GrubEfiModules()) argv.push_back(m);
  auto r = RunSubprocess(argv);
  if (!r.ok())
    return NotFound(
        fmt::format("{} cannot run ({}): install grub-common", mkimage, r.status().message()));
  if (r->exit_code != 0) {
    ::unlink(scratch_path.c_str());
    return Internal(DescribeFailure(argv, *r));
  }
  auto bytes = ReadFile(scratch_path);
  ::unlink(scratch_path.c_str());
  if (!bytes.ok()) return bytes.status().WithContext("reading the GRUB image");
  return bytes;
}

}  // namespace kiln::initrd
