#include "agent/module_loader.h"

#include <catch2/catch.hpp>

#include "tests/support/temp_dir.h"

using namespace kiln;
using namespace kiln::agent;
using kiln::test::TempDir;
using kiln::test::WriteTestFile;

namespace {

// A slice of a real kernel's index: a PCI bus driver for virtio, two virtio
// drivers, an Intel NIC, ext4 with its helpers, and crc32c for the CPU.
const char* kDep =
    "kernel/drivers/virtio/virtio_pci.ko: kernel/drivers/virtio/virtio.ko\n"
    "kernel/drivers/virtio/virtio.ko:\n"
    "kernel/drivers/net/virtio_net.ko: kernel/drivers/net/net_failover.ko "
    "kernel/net/core/failover.ko kernel/drivers/virtio/virtio.ko\n"
    "kernel/drivers/net/net_failover.ko: kernel/net/core/failover.ko\n"
    "kernel/net/core/failover.ko:\n"
    "kernel/drivers/block/virtio_blk.ko: kernel/drivers/virtio/virtio.ko\n"
    "kernel/drivers/net/ethernet/intel/e1000/e1000.ko:\n"
    "kernel/arch/x86/crypto/crc32c-intel.ko:\n"
    "kernel/fs/ext4/ext4.ko: kernel/lib/crc16.ko kernel/fs/jbd2/jbd2.ko\n"
    "kernel/lib/crc16.ko:\n"
    "kernel/fs/jbd2/jbd2.ko:\n"
    "kernel/drivers/net/ethernet/mellanox/mlx4/mlx4_core.ko:\n"
    "kernel/drivers/net/ethernet/mellanox/mlx4/mlx4_en.ko: "
    "kernel/drivers/net/ethernet/mellanox/mlx4/mlx4_core.ko\n";

const char* kAlias =
    "# Aliases extracted from modules themselves.\n"
    "alias pci:v00001AF4d*sv*sd*bc*sc*i* virtio_pci\n"
    "alias virtio:d00000001v* virtio_net\n"
    "alias virtio:d00000002v* virtio_blk\n"
    "alias pci:v00008086d0000100Esv*sd*bc*sc*i* e1000\n"
    "alias cpu:type:x86,ven*fam*mod*:feature:*0094* crc32c_intel\n"
    "alias crypto-crc32c crc32c_intel\n"
    "alias fs-ext4 ext4\n"
    "alias pci:v000015B3d00001003sv*sd*bc*sc*i* mlx4_core\n";

ModuleSet MakeSet(bool with_roots = true) {
  ModuleSet set;
  for (const char* p :
       {"kernel/drivers/virtio/virtio.ko", "kernel/drivers/virtio/virtio_pci.ko",
        "kernel/net/core/failover.ko", "kernel/drivers/net/net_failover.ko",
        "kernel/drivers/net/virtio_net.ko", "kernel/drivers/block/virtio_blk.ko",
        "kernel/drivers/net/ethernet/intel/e1000/e1000.ko",
        "kernel/arch/x86/crypto/crc32c-intel.ko", "kernel/lib/crc16.ko", "kernel/fs/jbd2/jbd2.ko",
        "kernel/fs/ext4/ext4.ko", "kernel/drivers/net/ethernet/mellanox/mlx4/mlx4_core.ko",
        "kernel/drivers/net/ethernet/mellanox/mlx4/mlx4_en.ko"})
    set.load_order.push_back(p);
  if (with_roots)
    set.roots = {"virtio_pci",   "virtio_net", "virtio_blk", "e1000",
                 "crc32c_intel", "ext4",       "mlx4_en"};
  set.aliases = ParseModuleAliases(kAlias, "modules.alias").value();
  set.deps = initrd::ModuleIndex::Parse(kDep, "modules.dep").value();
  return set;
}

const std::string kVirtioPciNet = "pci:v00001AF4d00001000sv00001AF4sd00000001bc02sc00i00";
const std::string kCpu = "cpu:type:x86,ven0000fam0006mod003F:feature:,0000,0094,00C2";

}  // namespace

TEST_CASE("modules.alias parses into patterns per module, a bad line is named") {
  auto a = ParseModuleAliases(kAlias, "modules.alias");
  REQUIRE(a.ok());
  CHECK(a->at("crc32c_intel").size() == 2);
  CHECK(a->at("virtio_net") == std::vector<std::string>{"virtio:d00000001v*"});
  auto bad =
      ParseModuleAliases("alias fs-ext4 ext4\nalias only-two\n", "/lib/modules/x/modules.alias");
  CHECK(bad.status().message() ==
        "/lib/modules/x/modules.alias:2: expected \"alias PATTERN MODULE\"");
  CHECK_FALSE(ParseModuleAliases("options e1000 debug=1\n", "m").ok());
}

TEST_CASE("device patterns are the ones on buses a machine lists") {
  CHECK(IsDevicePattern("pci:v00008086d*"));
  CHECK(IsDevicePattern("virtio:d00000001v*"));
  CHECK(IsDevicePattern("cpu:type:x86,ven*"));
  CHECK_FALSE(IsDevicePattern("fs-ext4"));
  CHECK_FALSE(IsDevicePattern("crypto-crc32c"));
  CHECK_FALSE(IsDevicePattern("scsi:t-0x00*"));
}

TEST_CASE("only drivers for present devices load, after their dependencies") {
  ModuleSet set = MakeSet();
  SECTION("a bare machine: filesystems and helpers only") {
    auto m = ModulesFor(set, {}, {});
    CHECK(m == std::vector<std::string>{"kernel/fs/jbd2/jbd2.ko", "kernel/lib/crc16.ko",
                                        "kernel/fs/ext4/ext4.ko"});
  }
  SECTION("a virtio PCI device and an SSE4.2 CPU, before the virtio bus is up") {
    auto m = ModulesFor(set, {kVirtioPciNet, kCpu}, {});
    CHECK(m == std::vector<std::string>{
                   "kernel/drivers/virtio/virtio.ko", "kernel/drivers/virtio/virtio_pci.ko",
                   "kernel/arch/x86/crypto/crc32c-intel.ko", "kernel/fs/jbd2/jbd2.ko",
                   "kernel/lib/crc16.ko", "kernel/fs/ext4/ext4.ko"});
  }
  SECTION("then the virtio devices: their drivers, and nothing loaded twice") {
    auto m = ModulesFor(set, {kVirtioPciNet, kCpu, "virtio:d00000001v00001AF4"},
                        {"virtio", "virtio_pci", "crc32c_intel", "crc16", "jbd2", "ext4"});
    CHECK(m == std::vector<std::string>{"kernel/net/core/failover.ko",
                                        "kernel/drivers/net/net_failover.ko",
                                        "kernel/drivers/net/virtio_net.ko"});
  }
  SECTION("an Intel e1000 alone") {
    auto m = ModulesFor(set, {"pci:v00008086d0000100Esv00001AF4sd00001100bc02sc00i00"},
                        {"crc16", "jbd2", "ext4"});
    CHECK(m == std::vector<std::string>{"kernel/drivers/net/ethernet/intel/e1000/e1000.ko"});
  }
  SECTION("a module built on a driver (mlx4_en on mlx4_core) comes with that driver's device") {
    CHECK(ModulesFor(set, {kVirtioPciNet}, {"virtio", "virtio_pci", "crc16", "jbd2", "ext4"})
              .empty());
    auto m = ModulesFor(set, {"pci:v000015B3d00001003sv000015B3sd00000006bc02sc00i00"},
                        {"crc16", "jbd2", "ext4"});
    CHECK(m == std::vector<std::string>{"kernel/drivers/net/ethernet/mellanox/mlx4/mlx4_core.ko",
                                        "kernel/drivers/net/ethernet/mellanox/mlx4/mlx4_en.ko"});
  }
  SECTION("without a roots file every module is asked for, libraries included") {
    auto m = ModulesFor(MakeSet(false), {}, {});
    CHECK(m == std::vector<std::string>{"kernel/drivers/virtio/virtio.ko",
                                        "kernel/net/core/failover.ko",
                                        "kernel/drivers/net/net_failover.ko", "kernel/lib/crc16.ko",
                                        "kernel/fs/jbd2/jbd2.ko", "kernel/fs/ext4/ext4.ko"});
  }
}

TEST_CASE("the machine's modaliases come from every bus and the CPU") {
  TempDir t;
  WriteTestFile(t.Sub("sys/bus/pci/devices/0000:00:03.0/modalias"), kVirtioPciNet + "\n");
  WriteTestFile(t.Sub("sys/bus/pci/devices/0000:00:04.0/modalias"), kVirtioPciNet + "\n");
  WriteTestFile(t.Sub("sys/bus/virtio/devices/virtio0/modalias"), "virtio:d00000001v00001AF4\n");
  WriteTestFile(t.Sub("sys/bus/virtio/devices/virtio1/vendor"), "0x1af4\n");  // no modalias
  WriteTestFile(t.Sub("sys/devices/system/cpu/modalias"), kCpu + "\n");
  WriteTestFile(t.Sub("sys/module/ext4/refcnt"), "1\n");
  auto a = PresentModaliases(t.Sub("sys"));
  CHECK(a == std::vector<std::string>{kCpu, kVirtioPciNet, "virtio:d00000001v00001AF4"});
  CHECK(LoadedModules(t.Sub("sys")) == std::set<std::string>{"ext4"});
  CHECK(PresentModaliases(t.Sub("nothing")).empty());
}

TEST_CASE("a module file that is missing is reported by name, the rest still tried") {
  TempDir t;
  WriteTestFile(t.Sub("sys/module/crc16/refcnt"), "1\n");
  WriteTestFile(t.Sub("sys/module/jbd2/refcnt"), "1\n");
  ModuleSet set = MakeSet();
  // ext4 is wanted and not loaded; its file is not under the modules dir.
  ModuleLoadReport r = LoadModulesForDevices(set, t.Sub("empty"), t.Sub("sys"));
  CHECK(r.carried == 13);
  CHECK(r.loaded.empty());
  REQUIRE(r.failures.size() == 1);
  CHECK(r.failures[0] == "ext4: No such file or directory");
}

TEST_CASE("the module set reads from the install environment's files, errors name the file") {
  TempDir t;
  WriteTestFile(t.Sub("m/modules.dep"), kDep);
  WriteTestFile(t.Sub("m/modules.alias"), kAlias);
  WriteTestFile(t.Sub("etc/modules"),
                "kernel/lib/crc16.ko\nkernel/fs/jbd2/jbd2.ko\n"
                "kernel/fs/ext4/ext4.ko\n");
  WriteTestFile(t.Sub("etc/roots"), "ext4\n");
  auto set = ReadModuleSet(t.Sub("m"), t.Sub("etc/modules"), t.Sub("etc/roots"));
  REQUIRE(set.ok());
  CHECK(set->load_order.size() == 3);
  CHECK(set->roots == std::set<std::string>{"ext4"});
  auto no_roots = ReadModuleSet(t.Sub("m"), t.Sub("etc/modules"), t.Sub("etc/none"));
  REQUIRE(no_roots.ok());
  CHECK(no_roots->roots.empty());
  WriteTestFile(t.Sub("m/modules.alias"), "alias broken\n");
  auto bad = ReadModuleSet(t.Sub("m"), t.Sub("etc/modules"), t.Sub("etc/roots"));
  CHECK(bad.status().message() ==
        t.Sub("m/modules.alias") + ":1: expected \"alias PATTERN MODULE\"");
  auto no_list = ReadModuleSet(t.Sub("m"), t.Sub("etc/missing"), t.Sub("etc/roots"));
  CHECK(no_list.status().message().find(t.Sub("etc/missing")) != std::string::npos);
}
