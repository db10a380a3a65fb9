// The UEFI boot loader: GRUB's configuration, the ESP's file layout through
// a mounted ESP (a directory here), through mtools onto a real vfat image
// (no root and no vfat kernel support needed), and the errors that stop an
// install which could not boot.

#include "agent/grub_efi.h"

#include <catch2/catch.hpp>
#include <filesystem>

#include "agent/bootloader.h"
#include "common/file_util.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"

using namespace kiln;
using namespace kiln::agent;
using kiln::test::Run;
using kiln::test::TempDir;
using kiln::test::WriteTestFile;
namespace fs = std::filesystem;

namespace {

// Answers blkid with a made-up UUID per device; runs everything else for
// real when `real` is set, else only records it.
class BlkidRunner : public CommandRunner {
 public:
  explicit BlkidRunner(bool real) : real_(real) {}
  Result<SubprocessResult> Run(const std::vector<std::string>& argv,
                               const SubprocessOptions& opts) override {
    calls.push_back(argv[0]);
    if (argv[0] == "blkid") {
      SubprocessResult r;
      r.exit_code = 0;
      r.out = argv[1] + ": UUID=\"uuid-of-" + fs::path(argv[1]).filename().string() + "\"\n";
      return r;
    }
    if (real_) return RunSubprocess(argv, opts);
    SubprocessResult r;
    r.exit_code = 0;
    return r;
  }
  std::vector<std::string> calls;

 private:
  bool real_;
};

PartitionSpec Part(int n, const std::string& dev, const std::string& type,
                   const std::string& fstype, const std::string& mount) {
  PartitionSpec p;
  p.number = n;
  p.name = type == "esp" ? "esp" : mount == "/" ? "root" : "boot";
  p.device = dev;
  p.type = type;
  p.fs = fstype;
  p.mount = mount;
  return p;
}

DiskPlan Plan(std::vector<PartitionSpec> parts) {
  DiskPlan plan;
  DiskSpec d;
  d.role = "os";
  d.device = "/dev/vda";
  d.table = "gpt";
  d.parts = std::move(parts);
  plan.disks.push_back(d);
  for (const auto& p : plan.disks[0].parts)
    if (!p.mount.empty()) plan.mounts.push_back({p.mount, p.device, p.fs, "defaults"});
  return plan;
}

struct Target {
  test::TempDir t;
  std::string root = t.Sub("target");
  std::string image = t.Sub("grubx64.efi");
  Target() {
    fs::create_directories(root + "/boot");
    for (const char* f : {"vmlinuz-6.1.0-13-amd64", "initrd.img-6.1.0-13-amd64"})
      REQUIRE(WriteFileAtomic(root + "/boot/" + f, "x", 0644).ok());
    REQUIRE(WriteFileAtomic(image, std::string("MZ\x90\0grub", 8), 0644).ok());
  }
  BootloaderOptions Opts() {
    BootloaderOptions o;
    o.target = root;
    o.firmware = "uefi";
    o.grub_efi_image = image;
    o.scratch_dir = t.Sub("scratch");
    return o;
  }
};

const Json kVars = {{"CONSOLE", "ttyS0"}};

}  // namespace

TEST_CASE("GRUB's configuration finds the boot partition by UUID and boots the kernel") {
  KernelFiles k{"vmlinuz-6.1.0-13-amd64", "initrd.img-6.1.0-13-amd64"};
  CHECK(GrubEfiConfig(k, "/boot/", "b-uuid", "r-uuid", "console=ttyS0") ==
        "# Written by kiln-agent at install time.\n"
        "set timeout=0\nset default=0\n"
        "search --no-floppy --fs-uuid --set=root b-uuid\n"
        "menuentry \"vmlinuz-6.1.0-13-amd64\" {\n"
        "  linux /boot/vmlinuz-6.1.0-13-amd64 root=UUID=r-uuid ro console=ttyS0\n"
        "  initrd /boot/initrd.img-6.1.0-13-amd64\n"
        "}\n");
  // No initrd, no extra arguments.
  CHECK(GrubEfiConfig({"vmlinuz-6", ""}, "/", "b", "r", "")
            .find("  linux /vmlinuz-6 root=UUID=r "
                  "ro\n}\n") != std::string::npos);
  auto files = EspFiles("IMG", "CFG");
  REQUIRE(files.size() == 2);
  CHECK(files[0].path == "EFI/kiln/grub.cfg");
  CHECK(files[1].path == "EFI/BOOT/BOOTX64.EFI");  // the image last
}

TEST_CASE("a UEFI install writes GRUB at the removable-media path of the mounted ESP") {
  Target t;
  BlkidRunner runner(false);
  DiskPlan plan = Plan({Part(1, "/dev/vda1", "esp", "vfat", "/boot/efi"),
                        Part(2, "/dev/vda2", "linux", "ext4", "/")});
  Status st = InstallBootloader(&runner, plan, kVars, t.Opts());
  INFO(st.ToString());
  REQUIRE(st.ok());
  std::string esp = t.root + "/boot/efi";
  CHECK(ReadFile(esp + "/EFI/BOOT/BOOTX64.EFI").value_or("") == ReadFile(t.image).value());
  std::string cfg = ReadFile(esp + "/EFI/kiln/grub.cfg").value_or("");
  CHECK(cfg.find("search --no-floppy --fs-uuid --set=root uuid-of-vda2\n") != std::string::npos);
  CHECK(cfg.find("linux /boot/vmlinuz-6.1.0-13-amd64 root=UUID=uuid-of-vda2 ro console=ttyS0\n") !=
        std::string::npos);
  // Nothing of the BIOS path: no EXTLINUX, no MBR code, no attributes.
  CHECK(runner.calls == std::vector<std::string>{"blkid"});
  CHECK(!fs::exists(t.root + "/boot/extlinux"));
  // Nothing but the two files (no temporaries left behind).
  int n = 0;
  for (const auto& e : fs::recursive_directory_iterator(esp))
    if (e.is_regular_file()) ++n;
  CHECK(n == 2);
  CHECK(BootloaderDescription("uefi") == "installing GRUB for UEFI");
  CHECK(BootloaderDescription("bios") == "installing EXTLINUX");
}

TEST_CASE("with a separate /boot GRUB searches for /boot and loads the kernel from its root") {
  Target t;
  BlkidRunner runner(false);
  DiskPlan plan = Plan({Part(1, "/dev/vda1", "esp", "vfat", "/boot/efi"),
                        Part(2, "/dev/vda2", "linux", "ext4", "/boot"),
                        Part(3, "/dev/vda3", "linux", "ext4", "/")});
  BootEntry entry;
  REQUIRE(InstallBootloader(&runner, plan, kVars, t.Opts(), &entry).ok());
  std::string cfg = ReadFile(t.root + "/boot/efi/EFI/kiln/grub.cfg").value_or("");
  CHECK(cfg.find("--set=root uuid-of-vda2\n") != std::string::npos);
  CHECK(cfg.find("linux /vmlinuz-6.1.0-13-amd64 root=UUID=uuid-of-vda3 ro") != std::string::npos);
  // What kexec would start: the same kernel and command line, as files
  // under the target.
  CHECK(entry.kernel == t.root + "/boot/vmlinuz-6.1.0-13-amd64");
  CHECK(entry.initrd == t.root + "/boot/initrd.img-6.1.0-13-amd64");
  CHECK(entry.cmdline == "root=UUID=uuid-of-vda3 ro console=ttyS0");
}

TEST_CASE("REBOOT chooses the firmware or kexec, anything else is named") {
  CHECK(RebootModeFrom(Json::object()).value() == RebootMode::kFirmware);
  CHECK(RebootModeFrom(Json{{"REBOOT", "firmware"}}).value() == RebootMode::kFirmware);
  CHECK(RebootModeFrom(Json{{"REBOOT", "kexec"}}).value() == RebootMode::kKexec);
  CHECK(RebootModeFrom(Json{{"REBOOT", "kexc"}}).status().message() ==
        "variable REBOOT is \"kexc\": expected \"firmware\" (the default) or \"kexec\"");
  CHECK_FALSE(RebootModeFrom(Json{{"REBOOT", true}}).ok());
}

TEST_CASE("kexec names the file it cannot open and loads nothing") {
  TempDir t;
  Status s = KexecLoad({t.Sub("no-vmlinuz"), "", "root=UUID=x ro"});
  CHECK(s.message().find(t.Sub("no-vmlinuz")) != std::string::npos);
  WriteTestFile(t.Sub("vmlinuz"), "not a kernel");
  s = KexecLoad({t.Sub("vmlinuz"), t.Sub("no-initrd"), "root=UUID=x ro"});
  CHECK(s.message().find(t.Sub("no-initrd")) != std::string::npos);
}

TEST_CASE("an ESP the plan does not mount is written with mtools onto its vfat filesystem") {
  Target t;
  std::string img = t.t.Sub("esp.img");
  REQUIRE(Run({"truncate", "-s", "64M", img}).exit_code == 0);
  auto mk = Run({"mkfs.fat", "-F", "32", img});
  INFO(mk.err);
  REQUIRE(mk.exit_code == 0);
  BlkidRunner runner(true);
  DiskPlan plan =
      Plan({Part(1, img, "esp", "vfat", ""), Part(2, "/dev/vda2", "linux", "ext4", "/")});
  Status st = InstallBootloader(&runner, plan, kVars, t.Opts());
  INFO(st.ToString());
  REQUIRE(st.ok());
  auto read = [&](const std::string& path) {
    auto r = Run({"mtype", "-i", img, "::/" + path}, {}, std::chrono::seconds(20));
    INFO(r.err);
    CHECK(r.exit_code == 0);
    return r.out;
  };
  CHECK(read("EFI/BOOT/BOOTX64.EFI") == ReadFile(t.image).value());
  CHECK(read("EFI/kiln/grub.cfg").find("root=UUID=uuid-of-vda2 ro console=ttyS0") !=
        std::string::npos);
  CHECK(!fs::exists(t.t.Sub("scratch")));  // staging removed
  // Installing again over the same ESP replaces the files.
  REQUIRE(InstallBootloader(&runner, plan, kVars, t.Opts()).ok());
  CHECK(read("EFI/BOOT/BOOTX64.EFI") == ReadFile(t.image).value());
}

TEST_CASE("a UEFI install that could not boot stops with the reason") {
  Target t;
  BlkidRunner runner(false);
  SECTION("no EFI system partition") {
    Status st = InstallBootloader(&runner, Plan({Part(1, "/dev/vda1", "linux", "ext4", "/")}),
                                  kVars, t.Opts());
    CHECK(st.message().find("has no EFI system partition: add `part esp size=512M type=esp") !=
          std::string::npos);
  }
  SECTION("an ESP that is not vfat") {
    Status st = InstallBootloader(&runner,
                                  Plan({Part(1, "/dev/vda1", "esp", "ext4", "/boot/efi"),
                                        Part(2, "/dev/vda2", "linux", "ext4", "/")}),
                                  kVars, t.Opts());
    CHECK(st.message().find("has fs=ext4: UEFI firmware reads only vfat") != std::string::npos);
  }
  SECTION("an install environment without the GRUB image") {
    auto o = t.Opts();
    o.grub_efi_image = t.t.Sub("missing.efi");
    Status st = InstallBootloader(&runner,
                                  Plan({Part(1, "/dev/vda1", "esp", "vfat", "/boot/efi"),
                                        Part(2, "/dev/vda2", "linux", "ext4", "/")}),
                                  kVars, o);
    CHECK(st.message().find("no GRUB EFI image (was it built with --no-uefi?)") !=
          std::string::npos);
    CHECK(!fs::exists(t.root + "/boot/efi/EFI"));
  }
}
