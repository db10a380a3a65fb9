#include "server/cli/initrd_cmd.h"

#include <fmt/format.h>
#include <unistd.h>

#include <filesystem>
#include <memory>

#include "agent/initrd/initrd_builder.h"
#include "common/strings.h"

namespace kiln::cli {
namespace fs = std::filesystem;
namespace {

struct InitrdFlags {
  initrd::InitrdSpec spec;
  std::string compression = "zstd";
  bool json = false;
  bool quiet = false;
  bool no_uefi = false;
};

// kiln-agent beside this kiln binary (installed together, or in the build
// tree's agent/ directory), else on PATH.
std::string FindAgent() {
  std::error_code ec;
  fs::path self = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    for (auto p : {self.parent_path() / "kiln-agent",
                   self.parent_path().parent_path() / "agent" / "kiln-agent"})
      if (::access(p.c_str(), X_OK) == 0) return p.string();
  }
  for (const auto& dir : Split(getenv("PATH") ? getenv("PATH") : "", ':')) {
    std::string p = dir + "/kiln-agent";
    if (!dir.empty() && ::access(p.c_str(), X_OK) == 0) return p;
  }
  return "";
}

// The only version under DIR/lib/modules (or DIR), when there is one.
std::string GuessKernelVersion(const std::string& modules) {
  for (const auto& base : {modules + "/lib/modules", modules}) {
    std::error_code ec;
    std::vector<std::string> found;
    for (const auto& e : fs::directory_iterator(base, ec))
      if (e.is_directory() && fs::exists(e.path() / "modules.dep"))
        found.push_back(e.path().filename());
    if (found.size() == 1) return found[0];
  }
  return "";
}

int RunInitrdBuild(InitrdFlags& f) {
  if (f.compression == "zstd")
    f.spec.compression = initrd::Compression::kZstd;
  else if (f.compression == "gzip")
    f.spec.compression = initrd::Compression::kGzip;
  else if (f.compression == "none")
    f.spec.compression = initrd::Compression::kNone;
  else
    return Fail("initrd build", InvalidArgument("--compression must be zstd, gzip or none"));
  f.spec.uefi = !f.no_uefi;
  if (f.spec.kernel_version.empty()) f.spec.kernel_version = GuessKernelVersion(f.spec.modules);
  if (f.spec.kernel_version.empty())
    return Fail("initrd build",
                InvalidArgument(fmt::format("--kernel-version is needed: {} does not hold exactly "
                                            "one lib/modules/VERSION",
                                            f.spec.modules)));
  if (f.spec.agent_binary.empty()) f.spec.agent_binary = FindAgent();
  auto report = initrd::BuildInitrd(f.spec, [&](std::string_view s) {
    if (!f.quiet && !f.json) fmt::print(stderr, "  {}\n", s);
  });
  if (!report.ok()) return Fail("initrd build", report.status());
  if (f.json) {
    PrintJson({{"out", f.spec.out},
               {"kernel_version", f.spec.kernel_version},
               {"bytes", report->bytes},
               {"entries", report->entries},
               {"modules", report->modules},
               {"binaries", report->binaries},
               {"libraries", report->libraries}});
  } else {
    fmt::print("{}: {} entries, {} modules, {}\n", f.spec.out, report->entries,
               report->modules.size(), HumanBytes(report->bytes));
  }
  return kExitOk;
}

}  // namespace

void RegisterInitrdCommand(CLI::App& app, CliState* state) {
  CLI::App* initrd = app.add_subcommand("initrd", "Build kiln's install environment (initramfs)");
  initrd->require_subcommand(1);
  auto f = std::make_shared<InitrdFlags>();
  CLI::App* build =
      initrd->add_subcommand("build", "Write the install environment as a compressed newc cpio");
  build
      ->add_option("--modules", f->spec.modules,
                   "kernel modules: a root holding lib/modules/VERSION (an unpacked "
                   "linux-image package after depmod -b), or that directory itself")
      ->required();
  build->add_option("--kernel-version", f->spec.kernel_version,
                    "kernel version (default: the only one under --modules)");
  build->add_option("--out", f->spec.out, "the initramfs file to write")->required();
  build->add_option("--agent", f->spec.agent_binary,
                    "the kiln-agent to include (default: beside this kiln, else on PATH)");
  build->add_option("--module", f->spec.extra_modules,
                    "an extra kernel module to include with its dependencies (repeatable)");
  build->add_option("--file", f->spec.extra_files, "an extra host file to include (repeatable)");
  build->add_option("--compression", f->compression, "zstd, gzip or none")->capture_default_str();
  build->add_flag("--no-uefi", f->no_uefi,
                  "leave out the GRUB EFI image (UEFI machines are then refused)");
  build
      ->add_option("--grub-dir", f->spec.grub_dir, "GRUB's x86_64-efi modules (grub-efi-amd64-bin)")
      ->capture_default_str();
  build->add_flag("--json", f->json, "print what went in as JSON");
  build->add_flag("-q,--quiet", f->quiet, "no progress lines");
  build->footer(
      "The environment holds busybox, kiln-agent and its libraries, sfdisk, mke2fs, mkfs.fat,\n"
      "extlinux, a standalone GRUB EFI image (grub-mkimage) for UEFI installs, mtools,\n"
      "the modules for common NICs and disks (virtio, e1000, igb, ixgbe, ahci,\n"
      "nvme, ...) and an /init that gets an address by DHCP and starts the agent with\n"
      "kiln.server=, kiln.token= and kiln.mode= from the kernel command line.\n\n"
      "Example:\n"
      "  apt-get download linux-image-6.1.0-56-amd64 && dpkg -x linux-image-*.deb k/\n"
      "  depmod -b k 6.1.0-56-amd64\n"
      "  kiln initrd build --modules k --out /var/lib/kiln/boot/initrd.kiln");
  build->callback([f, state] { state->exit_code = RunInitrdBuild(*f); });
}

}  // namespace kiln::cli
