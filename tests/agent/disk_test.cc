#include <sys/mount.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <mutex>

#include "agent/command_runner.h"
#include "agent/disk_plan.h"
#include "agent/disk_setup.h"
#include "classes/plan.h"
#include "classes/resolver.h"
#include "classes/space.h"
#include "common/file_util.h"
#include "common/strings.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"

using namespace kiln;
using namespace kiln::agent;
using kiln::test::TempDir;
using kiln::test::WriteTestFile;

namespace {

// Records commands instead of running them; answers blkid with a UUID.
class FakeRunner : public CommandRunner {
 public:
  Result<SubprocessResult> Run(const std::vector<std::string>& argv,
                               const SubprocessOptions& opts) override {
    std::lock_guard lock(mu);
    std::string line;
    for (const auto& a : argv) line += (line.empty() ? "" : " ") + a;
    calls.push_back(line);
    if (!opts.stdin_data.empty()) stdin_seen.push_back(opts.stdin_data);
    SubprocessResult r;
    r.exit_code = 0;
    if (argv[0] == "blkid")
      r.out = argv[1] + ": UUID=\"uuid-of-" + argv[1].substr(5) + "\" TYPE=\"ext4\"\n";
    if (fail_on == argv[0]) {
      r.exit_code = 1;
      r.err = argv[0] + ": something broke\n";
    }
    return r;
  }
  std::mutex mu;
  std::vector<std::string> calls, stdin_seen;
  std::string fail_on;
};

// Resolves a plan for one disk of the given size against a small space.
Json PlanFor(const TempDir& t, const std::string& disk_name, const std::string& disk_path,
             uint64_t disk_bytes, const std::string& layout) {
  std::string space = t.Sub("space");
  WriteTestFile(space + "/disk/DEFAULT", layout);
  WriteTestFile(space + "/classes.list", "DEFAULT every node\nLAST last\n");
  WriteTestFile(space + "/vars/DEFAULT.lua", "IMAGE = \"base@1\"\n");
  classes::Diagnostics diags;
  auto loaded = classes::LoadSpace(space, &diags);
  INFO(diags.Render());
  REQUIRE(loaded);
  classes::Resolver resolver(loaded);
  classes::NodeRecord node;
  node.id = node.hostname = "node1";
  node.facts = {
      {"schema", 1},
      {"disks",
       Json::array({{{"name", disk_name}, {"path", disk_path}, {"size_bytes", disk_bytes}}})},
      {"firmware", {{"type", "bios"}}}};
  auto plan = resolver.Resolve(node);
  INFO(plan.status().ToString());
  REQUIRE(plan.ok());
  return classes::PlanToJson(*plan, false);
}

const char* kLayout =
    "disk os on=1 table=gpt\n"
    "  part esp  size=32M  type=esp mount=/boot/efi\n"
    "  part root size=rest fs=ext4 mount=/ options=noatime label=kroot\n";

}  // namespace

TEST_CASE("a resolved plan's disks become an sfdisk script, mkfs commands and fstab") {
  TempDir t;
  Json plan = PlanFor(t, "vda", "/dev/vda", 8ull << 30, kLayout);
  auto dp = DiskPlanFromJson(plan);
  INFO(dp.status().ToString());
  REQUIRE(dp.ok());
  REQUIRE(dp->disks.size() == 1);
  const auto& disk = dp->disks[0];
  CHECK(disk.device == "/dev/vda");
  REQUIRE(disk.parts.size() == 2);
  CHECK(disk.parts[0].device == "/dev/vda1");
  CHECK(disk.parts[0].start_bytes == 1 << 20);

  std::string script = SfdiskScript(disk);
  CHECK(StartsWith(script, "label: gpt\nunit: sectors\n\n"));
  CHECK(script.find(
            "start=2048, size=65536, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name=\"esp\"") !=
        std::string::npos);

  CHECK(*MkfsCommand(disk.parts[0]) ==
        std::vector<std::string>{"mkfs.fat", "-F", "32", "/dev/vda1"});
  CHECK(*MkfsCommand(disk.parts[1]) ==
        std::vector<std::string>{"mke2fs", "-F", "-q", "-t", "ext4", "-L", "kroot", "/dev/vda2"});

  REQUIRE(dp->mounts.size() == 2);
  CHECK(dp->mounts[0].mount == "/");  // parents first
  CHECK(dp->BootPartition() == &disk.parts[1]);
  std::string fstab = FstabText(dp->mounts, {{"/dev/vda2", "abcd"}});
  CHECK(fstab.find("UUID=abcd / ext4 noatime 0 1\n") != std::string::npos);
  CHECK(fstab.find("/dev/vda1 /boot/efi vfat") != std::string::npos);
}

TEST_CASE("disk plans with bad fields name the JSON path") {
  Json good = {{"disks", Json::array({{{"device", "/dev/sda"},
                                       {"table", "gpt"},
                                       {"size_bytes", 1 << 30},
                                       {"partitions", Json::array({{{"number", 1},
                                                                    {"device", "/dev/sda1"},
                                                                    {"start_bytes", 1 << 20},
                                                                    {"size_bytes", 1 << 20}}})}}})},
               {"mounts", Json::array()}};
  REQUIRE(DiskPlanFromJson(good).ok());
  Json bad = good;
  bad["disks"][0]["partitions"][0]["start_bytes"] = "early";
  CHECK(DiskPlanFromJson(bad).status().message() ==
        "plan.disks[0].partitions[0].start_bytes: has the wrong type (string)");
  bad = good;
  bad["disks"][0]["table"] = "bsd";
  CHECK(DiskPlanFromJson(bad).status().message() ==
        "plan.disks[0].table: \"bsd\" is neither gpt nor msdos");
  bad = good;
  bad["disks"][0]["device"] = "sda";
  CHECK(DiskPlanFromJson(bad).status().message().find("is not under /dev") != std::string::npos);
  bad = good;
  bad["disks"][0]["partitions"][0]["size_bytes"] = 2ull << 30;
  CHECK(DiskPlanFromJson(bad).status().message().find("past the disk's") != std::string::npos);
  bad = good;
  bad["disks"][0]["partitions"][0]["number"] = 3;
  CHECK(DiskPlanFromJson(bad).status().message().find("numbered 1, 2, ... in order") !=
        std::string::npos);
  bad = good;
  bad["mounts"] = Json::array({{{"mount", "../etc"}, {"device", "/dev/sda1"}, {"fs", "ext4"}}});
  CHECK(DiskPlanFromJson(bad).status().message() ==
        "plan.mounts[0].mount: \"../etc\" is not an absolute path");
  PartitionSpec zfs;
  zfs.number = 1;
  zfs.device = "/dev/sda1";
  zfs.fs = "zfs";
  CHECK(MkfsCommand(zfs).status().message() ==
        "partition 1 (/dev/sda1): kiln cannot make a \"zfs\" filesystem");
}

TEST_CASE("a disk smaller than the layout is refused before anything runs") {
  TempDir t;
  Json plan = PlanFor(t, "vda", "/dev/vda", 8ull << 30, kLayout);
  auto dp = DiskPlanFromJson(plan);
  REQUIRE(dp.ok());
  FakeRunner runner;
  DiskSetup setup(
      &runner, {.target = t.Sub("target"),
                .device_size = [](const std::string&) -> Result<uint64_t> { return 1ull << 30; }});
  Status s = setup.CheckSizes(*dp);
  CHECK(s.code() == Code::kFailedPrecondition);
  CHECK(s.message() ==
        "disk /dev/vda (os) holds 1.0 GiB but the layout needs 8.0 GiB: nothing was written");
  CHECK(runner.calls.empty());
}

TEST_CASE("setup runs sfdisk, mkfs and mount in order, and a failing tool names itself") {
  TempDir t;
  Json plan = PlanFor(t, "vda", "/dev/null", 8ull << 30, kLayout);
  // Partition devices that exist, so waiting for them ends at once.
  plan["disks"][0]["partitions"][0]["device"] = "/dev/null";
  plan["disks"][0]["partitions"][1]["device"] = "/dev/zero";
  for (auto& m : plan["mounts"]) m["device"] = m["mount"] == "/" ? "/dev/zero" : "/dev/null";
  auto dp = DiskPlanFromJson(plan);
  REQUIRE(dp.ok());
  FakeRunner runner;
  DiskSetup setup(
      &runner, {.target = t.Sub("target"),
                .device_size = [](const std::string&) -> Result<uint64_t> { return 8ull << 30; }});
  REQUIRE(setup.CheckSizes(*dp).ok());
  REQUIRE(setup.Partition(*dp).ok());
  REQUIRE(setup.Format(*dp).ok());
  REQUIRE(setup.Mount(*dp).ok());
  REQUIRE(runner.calls.size() >= 5);
  CHECK(runner.calls[0] == "sfdisk --quiet --wipe always --wipe-partitions always /dev/null");
  CHECK(runner.stdin_seen[0].find("label: gpt") == 0);
  CHECK(runner.calls[2] == "mkfs.fat -F 32 /dev/null");
  CHECK(runner.calls[3] == "mke2fs -F -q -t ext4 -L kroot /dev/zero");
  CHECK(runner.calls[4] == "mount -t ext4 -o noatime /dev/zero " + t.Sub("target"));
  CHECK(runner.calls[5] == "mount -t vfat /dev/null " + t.Sub("target") + "/boot/efi");
  auto fstab = setup.Fstab(*dp);
  REQUIRE(fstab.ok());
  CHECK(fstab->find("UUID=uuid-of-zero / ext4 noatime 0 1") != std::string::npos);

  runner.fail_on = "mke2fs";
  Status s = setup.Format(*dp);
  CHECK(s.message() == "formatting /dev/zero: mke2fs exited with 1: mke2fs: something broke");
}

// The disk path without a VM: a loop device is partitioned, formatted and
// mounted for real, and what is written lands on its filesystems.
TEST_CASE("a loop device is partitioned, formatted and mounted for real") {
  TempDir t;
  std::string image = t.Sub("disk.img");
  REQUIRE(kiln::test::Run({"truncate", "-s", "256M", image}).exit_code == 0);
  auto loop = kiln::test::Run({"losetup", "--find", "--show", image});
  INFO(loop.err);
  REQUIRE(loop.exit_code == 0);
  std::string dev(Trim(loop.out));
  struct Detach {
    std::string dev, target;
    ~Detach() {
      kiln::test::Run({"umount", "-R", target});
      kiln::test::Run({"partx", "--delete", dev});
      kiln::test::Run({"losetup", "--detach", dev});
    }
  } detach{dev, t.Sub("target")};

  // No ESP here: this host's kernel has no vfat (the VM tests cover it).
  const char* layout =
      "disk os on=1 table=gpt\n"
      "  part root size=150M fs=ext4 mount=/ options=noatime label=kroot\n"
      "  part swap size=16M  fs=swap\n"
      "  part var  size=rest fs=ext4 mount=/var\n";
  Json plan = PlanFor(t, dev.substr(5), dev, 256ull << 20, layout);
  auto dp = DiskPlanFromJson(plan);
  REQUIRE(dp.ok());
  RealCommandRunner runner;
  DiskSetup setup(&runner, {.target = t.Sub("target")});
  REQUIRE(setup.CheckSizes(*dp).ok());
  Status s = setup.Partition(*dp);
  INFO(s.ToString());
  REQUIRE(s.ok());
  s = setup.Format(*dp);
  INFO(s.ToString());
  REQUIRE(s.ok());
  s = setup.Mount(*dp);
  INFO(s.ToString());
  REQUIRE(s.ok());
  WriteTestFile(t.Sub("target/etc/hello"), "from kiln\n");
  WriteTestFile(t.Sub("target/var/log/x"), "var\n");
  auto fstab = setup.Fstab(*dp);
  REQUIRE(fstab.ok());
  CHECK(fstab->find("UUID=") != std::string::npos);
  REQUIRE(setup.Unmount(*dp).ok());
  CHECK(access(t.Sub("target/etc/hello").c_str(), F_OK) != 0);  // it was on the disk

  // Mounting the root partition again shows the file and the label.
  auto blkid = kiln::test::Run({"blkid", dev + "p1"});
  CHECK(blkid.out.find("LABEL=\"kroot\"") != std::string::npos);
  CHECK(blkid.out.find("TYPE=\"ext4\"") != std::string::npos);
  CHECK(kiln::test::Run({"blkid", dev + "p2"}).out.find("TYPE=\"swap\"") != std::string::npos);
  REQUIRE(kiln::test::Run({"mount", dev + "p1", t.Sub("target")}).exit_code == 0);
  CHECK(*ReadFile(t.Sub("target/etc/hello")) == "from kiln\n");
  kiln::test::Run({"umount", t.Sub("target")});
}
