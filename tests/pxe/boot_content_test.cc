// The boot tree and the TFTP content over it: static files copied from
// (fake) Debian package paths, per-MAC configs rendered from the resolver,
// both through a real TFTP server on loopback.

#include <arpa/inet.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <catch2/catch.hpp>

#include "common/file_util.h"
#include "pxe/boot_content.h"
#include "pxe/boot_tree.h"
#include "tests/pxe/fake_resolver.h"
#include "tests/pxe/raw_tftp_client.h"
#include "tests/support/temp_dir.h"

using namespace kiln;
using namespace kiln::pxe;
using namespace kiln::test;

namespace {
UniqueFd BindLoopback() {
  UniqueFd fd(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  return fd;
}
}  // namespace

TEST_CASE("dynamic boot file names are recognised") {
  using K = DynamicFile::Kind;
  CHECK(MatchDynamic("pxelinux.cfg/01-52-54-00-12-34-56")->kind == K::kPxelinuxMac);
  CHECK(MatchDynamic("pxelinux.cfg/01-52-54-00-12-34-56")->mac->ToString() == "52:54:00:12:34:56");
  CHECK(MatchDynamic("pxelinux.cfg/default")->kind == K::kPxelinuxDefault);
  CHECK(MatchDynamic("pxelinux.cfg/C0A80001")->kind == K::kPxelinuxOther);
  CHECK(MatchDynamic("pxelinux.cfg/01-zz")->kind == K::kPxelinuxOther);
  CHECK(MatchDynamic("grub/grub.cfg")->kind == K::kGrubDispatcher);
  CHECK(MatchDynamic("grub/x86_64-efi/grub.cfg")->kind == K::kGrubDispatcher);
  CHECK(MatchDynamic("grub/kiln/52:54:00:12:34:56.cfg")->kind == K::kGrubMac);
  CHECK(MatchDynamic("grub/grub.cfg-01-52-54-00-12-34-56")->kind == K::kGrubMac);
  CHECK(!MatchDynamic("pxelinux.0"));
  CHECK(!MatchDynamic("grub/kiln/nonsense.cfg"));
}

TEST_CASE("static boot files are copied from the package paths, only when changed") {
  TempDir t;
  std::string usr = t.Sub("fake");
  WriteTestFile(usr + "/usr/lib/PXELINUX/pxelinux.0", "pxelinux");
  WriteTestFile(usr + "/usr/lib/syslinux/modules/bios/ldlinux.c32", "ldlinux");
  WriteTestFile(usr + "/usr/lib/ipxe/undionly.kpxe", "undionly");
  auto r = InstallStaticBootFiles(t.Sub("boot"), usr);
  REQUIRE(r.ok());
  CHECK(*ReadFile(t.Sub("boot/pxelinux.0")) == "pxelinux");
  CHECK(MissingRequired(*r) == "ipxe.efi (ipxe)");
  auto again = InstallStaticBootFiles(t.Sub("boot"), usr);
  REQUIRE(again.ok());
  for (const auto& f : *again)
    if (f.name == "pxelinux.0") CHECK(f.state == InstalledFile::State::kUnchanged);
}

TEST_CASE("the real Debian packages provide every required boot file") {
  TempDir t;
  auto r = InstallStaticBootFiles(t.Sub("boot"));
  REQUIRE(r.ok());
  CHECK(MissingRequired(*r) == "");
  struct stat st {};
  REQUIRE(::stat(t.Sub("boot/pxelinux.0").c_str(), &st) == 0);
  CHECK(st.st_size > 10000);
}

TEST_CASE("TFTP serves pxelinux.0 and configs rendered per MAC from the resolver") {
  TempDir t;
  WriteTestFile(t.Sub("boot/pxelinux.0"), "PXELINUX-BINARY");
  WriteTestFile(t.Sub("boot/kiln/vmlinuz"), "KERNEL");
  FakeResolver resolver;
  BootDecision web;
  web.target = BootTarget::kInstall;
  web.node = "web01";
  web.hostname = "web01";
  web.token = "abc";
  resolver.known["52:54:00:00:00:01"] = web;
  BootSettings settings;
  settings.http_port = 7071;
  auto content = BootContent::Create(t.Sub("boot"), settings, &resolver);
  REQUIRE(content.ok());
  auto server = TftpServer::Start(BindLoopback(), {}, content->get());
  REQUIRE(server.ok());

  RawTftpClient c((*server)->port());
  CHECK(c.Fetch("pxelinux.0") == "PXELINUX-BINARY");
  CHECK(c.Fetch("kiln/vmlinuz") == "KERNEL");
  std::string cfg = c.Fetch("pxelinux.cfg/01-52-54-00-00-00-01");
  CHECK(cfg.find("# kiln: web01 (52:54:00:00:00:01) boots install\n") == 0);
  CHECK(cfg.find("kiln.server=http://127.0.0.1:7071 kiln.mode=install kiln.node=web01 "
                 "kiln.token=abc") != std::string::npos);
  REQUIRE(resolver.asked.size() == 1);
  CHECK(resolver.asked[0].via == "pxelinux");
  CHECK(resolver.asked[0].client_ip == "127.0.0.1");

  // Unknown MACs: whatever the resolver decides (the server: discover).
  CHECK(c.Fetch("pxelinux.cfg/01-52-54-00-00-00-02").find("kiln.mode=discover") != std::string::npos);
  // GRUB: the dispatcher, then the per-MAC file.
  CHECK(c.Fetch("/grub/grub.cfg").find("configfile /grub/kiln/${net_default_mac}.cfg") !=
        std::string::npos);
  CHECK(c.Fetch("/grub/kiln/52:54:00:00:00:01.cfg").find("linux /kiln/vmlinuz") !=
        std::string::npos);
  // The tsize of a rendered file is its rendered length.
  c.SendRequest(pxe::tftp::MakeRequest(pxe::tftp::Opcode::kRrq, "pxelinux.cfg/default", "octet",
                                       {{"tsize", "0"}}));
  auto oack = std::get<pxe::tftp::Oack>(ParseReply(*c.Receive())).options;
  CHECK(oack[0].second == std::to_string(RenderPxelinuxDefault().size()));
  c.Close();
  RawTftpClient c2((*server)->port());
  CHECK(c2.Fetch("pxelinux.cfg/C0A80001") == "ERROR 1: pxelinux.cfg/C0A80001: no such file");

  // A resolver failure is "file not found" (PXELINUX then falls back to
  // pxelinux.cfg/default), never a crash.
  resolver.fail = Unavailable("coordination store down");
  CHECK(c2.Fetch("pxelinux.cfg/01-52-54-00-00-00-01") ==
        "ERROR 1: pxelinux.cfg/01-52-54-00-00-00-01: no such file");
}
