#include "agent/facts.h"

#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>

#include "classes/node.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"

using namespace kiln;
using namespace kiln::agent;
using kiln::test::TempDir;
using kiln::test::WriteTestFile;
namespace fs = std::filesystem;

namespace {

// A small fake /sys and /proc: one real disk, one loop device, a NIC with a
// driver, a virtual NIC, DMI and two PCI devices.
void FakeSystem(const TempDir& t) {
  std::string sys = t.Sub("sys"), proc = t.Sub("proc");
  WriteTestFile(proc + "/cpuinfo",
                "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Test CPU @ 3.00GHz\n"
                "physical id\t: 0\ncpu cores\t: 1\nflags\t\t: fpu avx2 aes\n\n"
                "processor\t: 1\nvendor_id\t: GenuineIntel\nmodel name\t: Test CPU @ 3.00GHz\n"
                "physical id\t: 1\ncpu cores\t: 1\nflags\t\t: fpu avx2 aes\n");
  WriteTestFile(proc + "/meminfo", "MemTotal:        8046392 kB\nMemFree:  1 kB\n");

  WriteTestFile(sys + "/devices/pci0000:00/0000:00:04.0/virtio1/block/vda/size", "4194304\n");
  WriteTestFile(sys + "/devices/pci0000:00/0000:00:04.0/virtio1/block/vda/serial",
                "disk-serial-1\n");
  WriteTestFile(sys + "/devices/pci0000:00/0000:00:04.0/virtio1/block/vda/queue/rotational", "0\n");
  WriteTestFile(sys + "/devices/pci0000:00/0000:00:04.0/virtio1/block/vda/removable", "0\n");
  WriteTestFile(sys + "/devices/virtual/block/loop0/size", "0\n");
  fs::create_directories(sys + "/block");
  fs::create_symlink("../devices/pci0000:00/0000:00:04.0/virtio1/block/vda", sys + "/block/vda");
  fs::create_symlink("../devices/virtual/block/loop0", sys + "/block/loop0");

  std::string eth = sys + "/devices/pci0000:00/0000:00:03.0/virtio0/net/eth0";
  WriteTestFile(eth + "/address", "52:54:00:AB:CD:EF\n");
  WriteTestFile(eth + "/carrier", "1\n");
  WriteTestFile(eth + "/speed", "-1\n");
  WriteTestFile(sys + "/bus/virtio/drivers/virtio_net/.keep", "");
  fs::create_symlink("../../../bus/virtio/drivers/virtio_net",
                     sys + "/devices/pci0000:00/0000:00:03.0/virtio0/driver");
  fs::create_symlink("../..", eth + "/device");
  WriteTestFile(sys + "/devices/virtual/net/lo/address", "00:00:00:00:00:00\n");
  WriteTestFile(sys + "/devices/virtual/net/br0/address", "aa:aa:aa:aa:aa:aa\n");
  fs::create_directories(sys + "/class/net");
  fs::create_symlink("../../devices/pci0000:00/0000:00:03.0/virtio0/net/eth0",
                     sys + "/class/net/eth0");
  fs::create_symlink("../../devices/virtual/net/lo", sys + "/class/net/lo");
  fs::create_symlink("../../devices/virtual/net/br0", sys + "/class/net/br0");

  WriteTestFile(sys + "/class/dmi/id/sys_vendor", "QEMU\n");
  WriteTestFile(sys + "/class/dmi/id/product_name", "Standard PC (i440FX + PIIX, 1996)\n");
  WriteTestFile(sys + "/class/dmi/id/product_uuid", "ABCD-1234\n");
  WriteTestFile(sys + "/class/dmi/id/chassis_type", "23\n");

  WriteTestFile(sys + "/bus/pci/devices/0000:00:02.0/vendor", "0x10de\n");
  WriteTestFile(sys + "/bus/pci/devices/0000:00:02.0/device", "0x1eb8\n");
  WriteTestFile(sys + "/bus/pci/devices/0000:00:02.0/class", "0x030200\n");
  WriteTestFile(sys + "/bus/pci/devices/0000:00:01.0/vendor", "0x8086\n");
  WriteTestFile(sys + "/bus/pci/devices/0000:00:01.0/device", "0x7000\n");
  WriteTestFile(sys + "/bus/pci/devices/0000:00:01.0/class", "0x060100\n");
  WriteTestFile(sys + "/firmware/efi/.keep", "");
}

}  // namespace

TEST_CASE("facts come from /sys and /proc, skipping virtual devices") {
  TempDir t;
  FakeSystem(t);
  Json f = CollectFacts({t.Sub("sys"), t.Sub("proc"), "web01"});
  CHECK(f["schema"] == 1);
  CHECK(f["hostname"] == "web01");
  CHECK(f["firmware"]["type"] == "uefi");
  CHECK(f["firmware"]["secure_boot"] == false);
  CHECK(f["cpu"]["model"] == "Test CPU @ 3.00GHz");
  CHECK(f["cpu"]["vendor"] == "GenuineIntel");
  CHECK(f["cpu"]["sockets"] == 2);
  CHECK(f["cpu"]["cores"] == 2);
  CHECK(f["cpu"]["threads"] == 2);
  CHECK(f["cpu"]["flags"] == Json::array({"fpu", "avx2", "aes"}));
  CHECK(f["memory"]["total_bytes"] == 8046392ull * 1024);

  REQUIRE(f["disks"].size() == 1);
  CHECK(f["disks"][0]["name"] == "vda");
  CHECK(f["disks"][0]["path"] == "/dev/vda");
  CHECK(f["disks"][0]["size_bytes"] == 4194304ull * 512);
  CHECK(f["disks"][0]["serial"] == "disk-serial-1");
  CHECK(f["disks"][0]["rotational"] == false);
  CHECK(f["disks"][0]["transport"] == "virtio");
  CHECK_FALSE(f["disks"][0].contains("model"));

  REQUIRE(f["nics"].size() == 1);
  CHECK(f["nics"][0]["mac"] == "52:54:00:ab:cd:ef");
  CHECK(f["nics"][0]["driver"] == "virtio_net");
  CHECK(f["nics"][0]["link"] == true);
  CHECK_FALSE(f["nics"][0].contains("speed_mbps"));
  CHECK(FactMacs(f) == std::vector<std::string>{"52:54:00:ab:cd:ef"});

  CHECK(f["dmi"]["sys_vendor"] == "QEMU");
  CHECK(f["dmi"]["product_uuid"] == "abcd-1234");
  CHECK(f["dmi"]["chassis_type"] == "Rack Mount Chassis");
  CHECK_FALSE(f["dmi"].contains("product_serial"));
  REQUIRE(f["pci"].size() == 2);
  CHECK(f["pci"][0]["slot"] == "0000:00:01.0");
  CHECK(f["pci"][1]["vendor"] == "10de");
  CHECK(f["pci"][1]["device"] == "1eb8");
  CHECK(f["pci"][1]["class"] == "0302");

  // What the agent reports is what class resolution accepts.
  CHECK(classes::ValidateFacts(f).ok());
}

TEST_CASE("an empty /sys still gives a facts document") {
  TempDir t;
  Json f = CollectFacts({t.Sub("nosys"), t.Sub("noproc"), "h"});
  CHECK(f["disks"].empty());
  CHECK(f["nics"].empty());
  CHECK(f["firmware"]["type"] == "bios");
  CHECK(f["cpu"]["threads"] == 0);
  CHECK_FALSE(f["memory"].contains("total_bytes"));
}

TEST_CASE("the real machine's facts have the documented shape") {
  Json f = CollectFacts();
  for (const char* k :
       {"schema", "hostname", "firmware", "cpu", "memory", "disks", "nics", "dmi", "pci"})
    CHECK(f.contains(k));
  CHECK(f["cpu"]["threads"].get<int>() >= 1);
  auto valid = classes::ValidateFacts(f);
  INFO(valid.ToString());
  CHECK(valid.ok());
}

TEST_CASE("a facts file is checked for shape, naming the file and key") {
  TempDir t;
  WriteTestFile(t.Sub("ok.json"), R"({"hostname":"db01","disks":[],"cpu":{"count":4}})");
  CHECK(LoadFactsFile(t.Sub("ok.json")).ok());
  WriteTestFile(t.Sub("bad.json"), R"({"disks":{"sda":1}})");
  CHECK(LoadFactsFile(t.Sub("bad.json")).status().message() ==
        t.Sub("bad.json") + ": \"disks\" must be an array, not object");
  WriteTestFile(t.Sub("list.json"), "[1]");
  CHECK(LoadFactsFile(t.Sub("list.json")).status().message().find("must be a JSON object") !=
        std::string::npos);
  WriteTestFile(t.Sub("broken.json"), "{");
  CHECK(LoadFactsFile(t.Sub("broken.json")).status().message().find("invalid JSON") !=
        std::string::npos);
}

TEST_CASE("kiln-agent facts prints this machine's facts as JSON") {
  auto r = kiln::test::Run({KILN_AGENT_EXE, "facts"});
  REQUIRE(r.exit_code == 0);
  auto j = ParseJson(r.out);
  REQUIRE(j.ok());
  CHECK((*j)["cpu"]["threads"].get<int>() >= 1);
}
