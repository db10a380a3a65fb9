#include <algorithm>
#include <catch2/catch.hpp>
#include <set>

#include "agent/initrd/cpio_writer.h"
#include "agent/initrd/init_script.h"
#include "agent/initrd/initrd_builder.h"
#include "agent/initrd/module_deps.h"
#include "common/file_util.h"
#include "common/strings.h"
#include "common/subprocess.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"

using namespace kiln;
using namespace kiln::initrd;
using kiln::test::TempDir;
using kiln::test::WriteTestFile;

namespace {

const char* kDep =
    "kernel/drivers/net/virtio_net.ko: kernel/drivers/net/net_failover.ko "
    "kernel/net/core/failover.ko\n"
    "kernel/drivers/net/net_failover.ko: kernel/net/core/failover.ko\n"
    "kernel/net/core/failover.ko:\n"
    "kernel/fs/ext4/ext4.ko: kernel/lib/crc16.ko kernel/fs/mbcache.ko kernel/fs/jbd2/jbd2.ko\n"
    "kernel/lib/crc16.ko:\n"
    "kernel/fs/mbcache.ko:\n"
    "kernel/fs/jbd2/jbd2.ko:\n"
    "kernel/drivers/net/ethernet/intel/e1000/e1000.ko:\n";

// Lists an archive with the real cpio tool: "path" per line.
std::set<std::string> ListArchive(const std::string& path) {
  auto r = RunSubprocess({"sh", "-c", "zstd -dc '" + path + "' | cpio -t 2>/dev/null"});
  REQUIRE(r.ok());
  std::set<std::string> out;
  for (auto& l : Split(r->out, '\n'))
    if (!l.empty()) out.insert(l);
  return out;
}

// Aliases of two carried drivers, a filesystem, and a driver the
// environment does not carry (its line must not come along).
const char* kAlias =
    "alias virtio:d00000001v* virtio_net\n"
    "alias pci:v00008086d0000100Esv*sd*bc*sc*i* e1000\n"
    "alias fs-ext4 ext4\n"
    "alias pci:v000015B3d00001017sv*sd*bc*sc*i* mlx5_core\n";

std::string FakeModules(const TempDir& t, const std::string& version) {
  std::string dir = t.Sub("k/lib/modules/" + version);
  WriteTestFile(dir + "/modules.dep", kDep);
  WriteTestFile(dir + "/modules.alias", kAlias);
  for (const auto& line : Split(kDep, '\n')) {
    if (line.empty()) continue;
    WriteTestFile(dir + "/" + line.substr(0, line.find(':')),
                  "\x7f"
                  "ELF fake module");
  }
  return t.Sub("k");
}

// A spec for a test build: fake modules of kernel 6.1.0-test, the agent
// this build made, the archive at T/initrd.zst.
InitrdSpec TestSpec(const TempDir& t) {
  InitrdSpec spec;
  spec.kernel_version = "6.1.0-test";
  spec.modules = FakeModules(t, "6.1.0-test");
  spec.out = t.Sub("initrd.zst");
  spec.agent_binary = KILN_AGENT_EXE;
  return spec;
}

}  // namespace

TEST_CASE("module names normalise dashes, paths and suffixes") {
  CHECK(ModuleName("virtio-net") == "virtio_net");
  CHECK(ModuleName("kernel/drivers/net/virtio_net.ko") == "virtio_net");
  CHECK(ModuleName("kernel/fs/ext4/ext4.ko.xz") == "ext4");
}

TEST_CASE("modules resolve with dependencies first, each once") {
  auto idx = ModuleIndex::Parse(kDep, "modules.dep");
  REQUIRE(idx.ok());
  auto order = idx->Resolve({"virtio-net", "ext4", "net_failover"}, false);
  REQUIRE(order.ok());
  CHECK(*order == std::vector<std::string>{
                      "kernel/net/core/failover.ko", "kernel/drivers/net/net_failover.ko",
                      "kernel/drivers/net/virtio_net.ko", "kernel/fs/jbd2/jbd2.ko",
                      "kernel/fs/mbcache.ko", "kernel/lib/crc16.ko", "kernel/fs/ext4/ext4.ko"});
}

TEST_CASE("unknown modules fail unless optional, a broken index names its line") {
  auto idx = ModuleIndex::Parse(kDep, "modules.dep");
  REQUIRE(idx.ok());
  auto missing = idx->Resolve({"nvme"}, false);
  CHECK(missing.status().message() == "kernel module nvme is not in modules.dep");
  CHECK(idx->Resolve({"nvme", "e1000"}, true)->size() == 1);

  auto bad = ModuleIndex::Parse("a.ko: b.ko\nno colon here\n", "/x/modules.dep");
  CHECK(bad.status().message() == "/x/modules.dep:2: expected \"module.ko: deps...\"");
  auto dangling = ModuleIndex::Parse("a.ko: b.ko\n", "m");
  REQUIRE(dangling.ok());
  CHECK(dangling->Resolve({"a"}, false).status().code() == Code::kCorruption);
  auto cycle = ModuleIndex::Parse("a.ko: b.ko\nb.ko: a.ko\n", "m");
  CHECK(cycle->Resolve({"a"}, false).status().message().find("cycle") != std::string::npos);
}

TEST_CASE("the default modules can mount what the agent makes, an ESP included") {
  const auto& mods = DefaultModules();
  auto has = [&](const char* m) { return std::find(mods.begin(), mods.end(), m) != mods.end(); };
  for (const char* m : {"ext4", "vfat", "nls_ascii", "nls_cp437", "virtio_blk", "virtio_net"})
    CHECK(has(m));
}

TEST_CASE("the cpio writer produces an archive the real cpio tool reads") {
  TempDir t;
  std::string out = t.Sub("a.cpio.zst");
  auto w = CpioWriter::Create(out, Compression::kZstd);
  REQUIRE(w.ok());
  REQUIRE((*w)->AddDirectory("/etc").ok());
  REQUIRE((*w)->AddData("/etc/hello", "hello world\n", 0644).ok());
  REQUIRE((*w)->AddSymlink("/etc/link", "hello").ok());
  REQUIRE((*w)->Finish().ok());
  auto names = ListArchive(out);
  CHECK(names == std::set<std::string>{"etc", "etc/hello", "etc/link"});
  auto content = RunSubprocess(
      {"sh", "-c",
       "cd '" + t.path() +
           "' && zstd -dc a.cpio.zst | cpio -i --quiet && cat etc/hello && readlink etc/link"});
  REQUIRE(content.ok());
  CHECK(content->out == "hello world\nhello\n");
}

TEST_CASE(
    "an initramfs holds init, busybox, the tools, the agent with its libraries and the modules") {
  TempDir t;
  InitrdSpec spec = TestSpec(t);
  spec.extra_modules = {"ext4"};
  auto report = BuildInitrd(spec);
  INFO(report.status().ToString());
  REQUIRE(report.ok());
  auto names = ListArchive(spec.out);
  for (const char* p :
       {"init", "bin/busybox", "bin/sh", "usr/bin/kiln-agent", "usr/sbin/sfdisk", "usr/sbin/mke2fs",
        "usr/sbin/mkfs.ext4", "usr/sbin/mkfs.fat", "usr/bin/extlinux", "usr/lib/EXTLINUX/mbr.bin",
        "etc/mke2fs.conf", "lib64/ld-linux-x86-64.so.2", "etc/kiln/modules",
        "lib/modules/6.1.0-test/kernel/drivers/net/virtio_net.ko",
        "lib/modules/6.1.0-test/kernel/fs/jbd2/jbd2.ko", "usr/lib/kiln/grubx64.efi",
        "usr/bin/mtools", "usr/bin/mcopy"}) {
    INFO(p);
    CHECK(names.count(p) == 1);
  }
  // The agent's libraries come along (libzstd at least), and only those it
  // calls: libarchive would bring libxml2 and ICU's 30 MB of data, libcurl
  // TLS, Kerberos and LDAP (kiln has its own HTTP client), libcrypto 4.5 MB
  // (SHA-256 comes from nettle).
  bool zstd = false, nettle = false;
  for (const auto& l : report->libraries) {
    INFO(l);
    zstd |= l.find("libzstd") != std::string::npos;
    CHECK(l.find("libarchive") == std::string::npos);
    CHECK(l.find("libicu") == std::string::npos);
    CHECK(l.find("libcurl") == std::string::npos);
    CHECK(l.find("libgssapi") == std::string::npos);
    CHECK(l.find("libcrypto") == std::string::npos);
    nettle |= l.find("libnettle") != std::string::npos;
  }
  CHECK(zstd);
  CHECK(nettle);
  // busybox's own mke2fs (ext2 only) must not shadow the real one.
  CHECK(names.count("sbin/mke2fs") == 1);
  auto link = RunSubprocess({"sh", "-c",
                             "cd '" + t.path() +
                                 "' && mkdir x && cd x && zstd -dc ../initrd.zst | cpio -id "
                                 "--quiet sbin/mke2fs && readlink sbin/mke2fs"});
  REQUIRE(link.ok());
  CHECK(link->out == "/usr/sbin/mke2fs\n");
}

TEST_CASE(
    "the install environment carries a GRUB EFI image for UEFI installs, unless told not to") {
  TempDir t;
  InitrdSpec spec = TestSpec(t);
  REQUIRE(BuildInitrd(spec).ok());
  auto x = RunSubprocess({"sh", "-c",
                          "cd '" + t.path() +
                              "' && mkdir x && cd x && zstd -dc ../initrd.zst | cpio "
                              "-id --quiet usr/lib/kiln/grubx64.efi"});
  REQUIRE(x.ok());
  std::string image = ReadFile(t.Sub("x/usr/lib/kiln/grubx64.efi")).value_or("");
  // A PE/COFF executable for x86-64 (machine 0x8664) with its prefix and
  // the modules the agent's grub.cfg needs built in.
  REQUIRE(image.size() > 0x40);
  CHECK(image.substr(0, 2) == "MZ");
  uint32_t pe = static_cast<uint8_t>(image[0x3c]) | static_cast<uint8_t>(image[0x3d]) << 8;
  REQUIRE(image.size() > pe + 6);
  CHECK(image.substr(pe, 4) == std::string("PE\0\0", 4));
  CHECK(image.substr(pe + 4, 2) == "\x64\x86");
  CHECK(image.find("/EFI/kiln") != std::string::npos);
  for (const char* mod : {"search_fs_uuid", "part_gpt", "ext2", "linux"}) {
    INFO(mod);
    CHECK(image.find(mod) != std::string::npos);
  }

  spec.uefi = false;
  spec.out = t.Sub("plain.zst");
  REQUIRE(BuildInitrd(spec).ok());
  CHECK(ListArchive(spec.out).count("usr/lib/kiln/grubx64.efi") == 0);

  spec.uefi = true;
  spec.grub_dir = t.Sub("no-grub");
  CHECK(BuildInitrd(spec).status().message().find(
            "has no GRUB EFI modules: install grub-efi-amd64-bin") != std::string::npos);
}

TEST_CASE("initrd build errors name what is missing") {
  TempDir t;
  InitrdSpec spec;
  spec.kernel_version = "6.1.0-test";
  spec.modules = t.Sub("nothing");
  spec.out = t.Sub("i");
  spec.agent_binary = KILN_AGENT_EXE;
  auto no_dep = BuildInitrd(spec);
  CHECK(no_dep.status().message().find("no modules.dep in") != std::string::npos);

  spec.modules = FakeModules(t, "6.1.0-test");
  spec.extra_modules = {"no_such_driver"};
  CHECK(BuildInitrd(spec).status().message() ==
        "kernel module no_such_driver is not in modules.dep");

  spec.extra_modules = {};
  spec.agent_binary = t.Sub("missing-agent");
  CHECK(BuildInitrd(spec).status().message().find("missing-agent is missing") != std::string::npos);
}

TEST_CASE("kiln initrd build works from the command line") {
  TempDir t;
  std::string modules = FakeModules(t, "6.1.0-test");
  auto r = kiln::test::Run({KILN_EXE, "initrd", "build", "--modules", modules, "--out",
                            t.Sub("i.zst"), "--agent", KILN_AGENT_EXE, "--json"});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(r.out.find("\"kernel_version\": \"6.1.0-test\"") != std::string::npos);

  auto bad = kiln::test::Run(
      {KILN_EXE, "initrd", "build", "--modules", t.Sub("none"), "--out", t.Sub("i.zst")});
  CHECK(bad.exit_code == 2);
  CHECK(bad.err.find("--kernel-version is needed") != std::string::npos);
}

TEST_CASE("the init script reads kiln's kernel parameters and has a rescue path") {
  std::string init = InitScript();
  for (const char* p :
       {"kiln.server=", "kiln.token=", "kiln.mode=", "BOOTIF=", "udhcpc", "kiln-agent", "rescue"})
    CHECK(init.find(p) != std::string::npos);
  // Both scripts are valid shell.
  for (const auto& script : {InitScript(), UdhcpcScript()}) {
    auto r = RunSubprocess({"sh", "-n"}, {.stdin_data = script});
    REQUIRE(r.ok());
    CHECK(r->exit_code == 0);
  }
}

TEST_CASE(
    "the environment's agent picks the drivers for the devices present from what it carries") {
  TempDir t;
  InitrdSpec spec = TestSpec(t);
  spec.uefi = false;
  spec.extra_modules = {"virtio_net", "e1000", "ext4"};
  REQUIRE(BuildInitrd(spec).ok());
  auto x = RunSubprocess({"sh", "-c",
                          "cd '" + t.path() + "' && mkdir x && cd x && zstd -dc ../initrd.zst | " +
                              "cpio -id --quiet 'etc/kiln/*' 'lib/modules/*'"});
  REQUIRE(x.ok());
  std::string kdir = t.Sub("x/lib/modules/6.1.0-test");
  // Only the carried modules' aliases, and the names asked for.
  std::string alias = ReadFile(kdir + "/modules.alias").value_or("");
  CHECK(alias.find("virtio_net") != std::string::npos);
  CHECK(alias.find("mlx5_core") == std::string::npos);
  std::string roots = ReadFile(t.Sub("x/etc/kiln/module-roots")).value_or("");
  for (const char* n : {"virtio_net\n", "e1000\n", "ext4\n"})
    CHECK(roots.find(n) != std::string::npos);
  CHECK(roots.find("failover\n") == std::string::npos);

  // A machine with one virtio NIC: its driver and dependencies, ext4 with
  // its helpers, and not e1000.
  WriteTestFile(t.Sub("sys/bus/virtio/devices/virtio0/modalias"), "virtio:d00000001v00001AF4\n");
  auto r = RunSubprocess({KILN_AGENT_EXE, "load-modules", "--dry-run", "--dir", kdir, "--list",
                          t.Sub("x/etc/kiln/modules"), "--roots", t.Sub("x/etc/kiln/module-roots"),
                          "--sysfs", t.Sub("sys")});
  REQUIRE(r.ok());
  INFO(r->err);
  CHECK(r->exit_code == 0);
  CHECK(r->out ==
        "kernel/net/core/failover.ko\nkernel/drivers/net/net_failover.ko\n"
        "kernel/drivers/net/virtio_net.ko\nkernel/fs/jbd2/jbd2.ko\nkernel/fs/mbcache.ko\n"
        "kernel/lib/crc16.ko\nkernel/fs/ext4/ext4.ko\n");

  // Without its index it says which file is missing and fails, so /init
  // falls back to inserting every module.
  auto bad = RunSubprocess({KILN_AGENT_EXE, "load-modules", "--dry-run", "--dir", t.Sub("nowhere"),
                            "--list", t.Sub("x/etc/kiln/modules")});
  REQUIRE(bad.ok());
  CHECK(bad->exit_code == 1);
  CHECK(bad->err.find(t.Sub("nowhere") + "/modules.alias") != std::string::npos);
}
