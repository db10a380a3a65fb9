// kiln-agent install on a real block device without a VM: a loop device
// stands in for the machine's disk. The agent partitions, formats, mounts,
// deploys, configures and installs EXTLINUX; the test then mounts the
// result and reads it.

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>

#include "common/file_util.h"
#include "common/json.h"
#include "common/strings.h"
#include "tests/support/kiln_server.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"

using namespace kiln;
using namespace kiln::test;
namespace fs = std::filesystem;

namespace {

const std::string kExamples = std::string(KILN_SOURCE_DIR) + "/examples";

void Put(const std::string& path, const std::string& content, mode_t mode = 0644) {
  fs::create_directories(fs::path(path).parent_path());
  REQUIRE(WriteFileAtomic(path, content, mode).ok());
}

// A loop device over a sparse file, detached (with its partitions and any
// mount below `target`) when the test ends.
struct LoopDisk {
  std::string dev, target;
  LoopDisk(const std::string& file, const std::string& size, std::string target_dir)
      : target(std::move(target_dir)) {
    REQUIRE(Run({"truncate", "-s", size, file}).exit_code == 0);
    auto r = Run({"losetup", "--find", "--show", file});
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    dev = std::string(Trim(r.out));
  }
  ~LoopDisk() {
    Run({"umount", "-R", target});
    Run({"partx", "--delete", dev});
    Run({"losetup", "--detach", dev});
  }
  std::string name() const { return dev.substr(5); }
};

struct DiskSite {
  TempDir work;
  std::unique_ptr<KilnServer> server;

  explicit DiskSite(const std::string& layout =
                        "disk os on=smallest table=gpt\n"
                        "  part bios size=1M type=bios\n"
                        "  part root size=rest fs=ext4 mount=/ "
                        "options=noatime\n") {
    std::string sp = work.Sub("space");
    Put(sp + "/classes.list", "DEFAULT every node\nLAST after every other class\n");
    Put(sp + "/vars/DEFAULT.lua", "IMAGE = \"sys@1\"\nCONSOLE = \"ttyS0,115200\"\n");
    Put(sp + "/disk/DEFAULT", layout);
    Put(sp + "/files/etc/hostname/DEFAULT", "m1\n");
    Put(sp + "/scripts/DEFAULT/10-mark",
        "#!/bin/sh\nset -eu\necho \"installed by $KILN_NODE\" > /etc/kiln-mark\n", 0755);
    server = std::make_unique<KilnServer>(std::vector<std::string>{"--space", sp});

    std::string tree = work.Sub("tree");
    fs::create_directories(tree + "/bin");
    fs::copy_file("/bin/busybox", tree + "/bin/busybox");
    for (const char* app : {"sh", "echo", "cat"})
      fs::create_symlink("busybox", tree + "/bin/" + app);
    Put(tree + "/etc/passwd", "root:x:0:0:root:/root:/bin/sh\n");
    Put(tree + "/etc/group", "root:x:0:\n");
    Put(tree + "/boot/vmlinuz-6.1.0-1-amd64", "a kernel\n");
    Put(tree + "/boot/initrd.img-6.1.0-1-amd64", "an initrd\n");
    Put(tree + "/usr/share/big", std::string(2 << 20, 'b'));
    auto c = server->Kiln({"image", "capture", "sys", "--from-dir", tree});
    INFO(c.err);
    REQUIRE(c.exit_code == 0);
    REQUIRE(server->Kiln({"node", "add", "m1", "--mac", "52:54:00:12:34:56"}).exit_code == 0);
  }

  // web01's facts with the loop device as its only disk, claiming size.
  std::string Facts(const std::string& disk, uint64_t size, const std::string& firmware = "bios") {
    Json f = ParseJson(ReadFile(kExamples + "/facts/web01.json").value()).value();
    f["disks"] = Json::array({Json{{"name", disk},
                                   {"path", "/dev/" + disk},
                                   {"size_bytes", size},
                                   {"rotational", false},
                                   {"removable", false},
                                   {"model", "loop"},
                                   {"serial", ""}}});
    f["firmware"]["type"] = firmware;
    std::string path = work.Sub("facts.json");
    REQUIRE(WriteFileAtomic(path, f.dump(2), 0644).ok());
    return path;
  }

  RunResult Install(const std::string& facts, const std::string& target,
                    std::vector<std::string> extra = {}) {
    std::vector<std::string> argv = {KILN_AGENT_EXE,
                                     "install",
                                     "--no-reboot",
                                     "--server",
                                     server->url(),
                                     "--node-token",
                                     server->token(),
                                     "--node",
                                     "m1",
                                     "--facts",
                                     facts,
                                     "--target",
                                     target,
                                     "--state",
                                     work.Sub("state"),
                                     "--log",
                                     work.Sub("install.log")};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return Run(argv, {}, std::chrono::seconds(180));
  }
};

std::string ReadHead(const std::string& path, size_t n) {
  std::string out(n, '\0');
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  REQUIRE(fd.valid());
  REQUIRE(::pread(fd.get(), out.data(), n, 0) == static_cast<ssize_t>(n));
  return out;
}

std::string Blkid(const std::string& dev, const std::string& tag) {
  return std::string(Trim(Run({"blkid", "-o", "value", "-s", tag, dev}).out));
}

}  // namespace

TEST_CASE("install onto a disk: partitioned, formatted, deployed, configured and made bootable") {
  DiskSite site;
  LoopDisk disk(site.work.Sub("disk.img"), "320M", site.work.Sub("target"));
  auto r = site.Install(site.Facts(disk.name(), 320ull << 20), disk.target);
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(r.err.find("==> bootloader: installing EXTLINUX") != std::string::npos);

  // Nothing is left mounted; the root partition holds the installed system.
  auto mounts = ReadFile("/proc/self/mounts").value_or("");
  CHECK(mounts.find(disk.target) == std::string::npos);
  std::string root_dev = disk.dev + "p2";
  CHECK(Blkid(root_dev, "TYPE") == "ext4");
  std::string uuid = Blkid(root_dev, "UUID");
  REQUIRE(!uuid.empty());
  std::string mnt = site.work.Sub("check");
  fs::create_directories(mnt);
  REQUIRE(Run({"mount", "-o", "ro", root_dev, mnt}).exit_code == 0);
  struct Unmount {
    std::string m;
    ~Unmount() { Run({"umount", m}); }
  } unmount{mnt};
  CHECK(ReadFile(mnt + "/usr/share/big").value_or("") == std::string(2 << 20, 'b'));
  CHECK(ReadFile(mnt + "/etc/hostname").value_or("") == "m1\n");
  CHECK(ReadFile(mnt + "/etc/kiln-mark").value_or("") == "installed by m1\n");
  std::string fstab = ReadFile(mnt + "/etc/fstab").value_or("");
  CHECK(fstab.find("UUID=" + uuid + " / ext4 noatime") != std::string::npos);
  std::string conf = ReadFile(mnt + "/boot/extlinux/extlinux.conf").value_or("");
  CHECK(conf.find("LINUX /boot/vmlinuz-6.1.0-1-amd64") != std::string::npos);
  CHECK(conf.find("INITRD /boot/initrd.img-6.1.0-1-amd64") != std::string::npos);
  CHECK(conf.find("APPEND root=UUID=" + uuid + " ro console=ttyS0,115200") != std::string::npos);
  CHECK(fs::exists(mnt + "/boot/extlinux/ldlinux.sys"));

  // The disk starts with SYSLINUX's GPT MBR code, and / is legacy-bootable.
  std::string mbr = ReadFile("/usr/lib/EXTLINUX/gptmbr.bin").value();
  std::string head = ReadHead(disk.dev, 440);
  CHECK(head == mbr.substr(0, 440));
  auto attrs = Run({"sfdisk", "--part-attrs", disk.dev, "2"});
  CHECK(attrs.out.find("LegacyBIOSBootable") != std::string::npos);

  auto node = site.server->Client().Get("/api/v1/nodes/m1");
  REQUIRE(node.ok());
  CHECK((*node)["state"] == "installed");
  CHECK((*node)["boot"] == "localboot");
}

TEST_CASE("a disk smaller than the layout needs stops the install before anything is written") {
  DiskSite site;
  LoopDisk disk(site.work.Sub("disk.img"), "64M", site.work.Sub("target"));
  // The facts claim 320M (the plan fits), the device has 64M.
  auto r = site.Install(site.Facts(disk.name(), 320ull << 20), disk.target);
  CHECK(r.exit_code == 1);
  INFO(r.err);
  CHECK(r.err.find(disk.dev) != std::string::npos);
  CHECK(r.err.find("64") != std::string::npos);
  // Not a byte was written: the device is still all zeros at its start.
  std::string head = ReadHead(disk.dev, 1 << 20);
  CHECK(head == std::string(1 << 20, '\0'));
  auto node = site.server->Client().Get("/api/v1/nodes/m1");
  CHECK((*node)["state"] == "failed");
}

TEST_CASE("a UEFI install puts GRUB on the EFI system partition, with no NVRAM entry") {
  // The ESP is not mounted by this layout, so the agent writes it with
  // mtools: this host's kernel has no vfat, and mtools needs none. (A
  // mounted ESP is the VM scenario install_uefi's path.)
  DiskSite site(
      "disk os on=smallest table=gpt\n"
      "  part esp size=64M type=esp\n"
      "  part root size=rest fs=ext4 mount=/ options=noatime\n");
  LoopDisk disk(site.work.Sub("disk.img"), "320M", site.work.Sub("target"));
  // A GRUB image as `kiln initrd build` makes it.
  std::string grub = site.work.Sub("grubx64.efi");
  auto mk = Run({"grub-mkimage", "-O", "x86_64-efi", "-p", "/EFI/kiln", "-o", grub, "part_gpt",
                 "fat", "ext2", "search_fs_uuid", "linux", "normal"});
  INFO(mk.err);
  REQUIRE(mk.exit_code == 0);
  auto r = site.Install(site.Facts(disk.name(), 320ull << 20, "uefi"), disk.target,
                        {"--grub-efi", grub});
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(r.err.find("==> bootloader: installing GRUB for UEFI") != std::string::npos);

  std::string esp = disk.dev + "p1", root = disk.dev + "p2";
  CHECK(Blkid(esp, "TYPE") == "vfat");
  std::string uuid = Blkid(root, "UUID");
  REQUIRE(!uuid.empty());
  auto mread = [&](const std::string& path) {
    auto m = Run({"mtype", "-i", esp, "::/" + path}, {"MTOOLS_SKIP_CHECK=1"});
    INFO(m.err);
    CHECK(m.exit_code == 0);
    return m.out;
  };
  CHECK(mread("EFI/BOOT/BOOTX64.EFI") == ReadFile(grub).value());
  std::string cfg = mread("EFI/kiln/grub.cfg");
  CHECK(cfg.find("search --no-floppy --fs-uuid --set=root " + uuid + "\n") != std::string::npos);
  CHECK(cfg.find("linux /boot/vmlinuz-6.1.0-1-amd64 root=UUID=" + uuid +
                 " ro console=ttyS0,115200\n") != std::string::npos);
  CHECK(cfg.find("initrd /boot/initrd.img-6.1.0-1-amd64\n") != std::string::npos);
  // The partition type is the ESP's; nothing of the BIOS path was done.
  auto type = Run({"sfdisk", "--part-type", disk.dev, "1"});
  CHECK(Trim(type.out) == "C12A7328-F81F-11D2-BA4B-00A0C93EC93B");
  CHECK(ReadHead(disk.dev, 440) == std::string(440, '\0'));

  auto node = site.server->Client().Get("/api/v1/nodes/m1");
  REQUIRE(node.ok());
  CHECK((*node)["state"] == "installed");
}
