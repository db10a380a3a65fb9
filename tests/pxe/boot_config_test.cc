// Rendered boot configs, pinned byte for byte: what machines read must not
// change by accident.

#include "pxe/boot_config.h"

#include <catch2/catch.hpp>

using namespace kiln;
using namespace kiln::pxe;

namespace {
Mac M() {
  return *ParseMac("52:54:00:12:34:56");
}
BootDecision Install() {
  BootDecision d;
  d.target = BootTarget::kInstall;
  d.node = "web01";
  d.hostname = "web01";
  d.token = "tok123";
  return d;
}
BootSettings Settings() {
  BootSettings s;
  s.kernel_args = "console=ttyS0,115200";
  return s;
}
const std::string kUrl = "http://10.0.0.1:7070";
}  // namespace

TEST_CASE("boot targets parse and print") {
  for (auto t :
       {BootTarget::kInstall, BootTarget::kLocalboot, BootTarget::kDiscover, BootTarget::kRescue})
    CHECK(*ParseBootTarget(BootTargetName(t)) == t);
  CHECK(ParseBootTarget("reinstall").status().message() ==
        "unknown boot target \"reinstall\" (expected install, localboot, discover or rescue)");
}

TEST_CASE("the server URL comes from the settings or the address the client used") {
  BootSettings s;
  s.http_port = 8080;
  CHECK(ServerUrlFor(s, "10.0.0.1") == "http://10.0.0.1:8080");
  CHECK(ServerUrlFor(s, "fd00::1") == "http://[fd00::1]:8080");
  s.server_url = "http://kiln.example:7070/";
  CHECK(ServerUrlFor(s, "10.0.0.1") == "http://kiln.example:7070");
}

TEST_CASE("PXELINUX config for install carries server, mode, node and token") {
  CHECK(RenderPxelinux(M(), Install(), Settings(), kUrl) ==
        "# kiln: web01 (52:54:00:12:34:56) boots install\n"
        "DEFAULT kiln\n"
        "PROMPT 0\n"
        "TIMEOUT 0\n"
        "LABEL kiln\n"
        "  KERNEL kiln/vmlinuz\n"
        "  INITRD kiln/initrd.img\n"
        "  APPEND kiln.server=http://10.0.0.1:7070 kiln.mode=install kiln.node=web01 "
        "kiln.token=tok123 console=ttyS0,115200\n"
        "  IPAPPEND 2\n");
}

TEST_CASE("PXELINUX localboot boots the disk and carries no token") {
  BootDecision d = Install();
  d.target = BootTarget::kLocalboot;
  std::string cfg = RenderPxelinux(M(), d, Settings(), kUrl);
  CHECK(cfg ==
        "# kiln: web01 (52:54:00:12:34:56) boots localboot\n"
        "DEFAULT local\n"
        "PROMPT 0\n"
        "TIMEOUT 0\n"
        "LABEL local\n"
        "  LOCALBOOT 0\n");
  CHECK(RenderPxelinuxDefault().find("LOCALBOOT 0") != std::string::npos);
}

TEST_CASE("rescue never carries the token, discover does") {
  BootDecision d = Install();
  d.target = BootTarget::kRescue;
  CHECK(KernelCommandLine(M(), d, {}, kUrl) ==
        "kiln.server=http://10.0.0.1:7070 kiln.mode=rescue kiln.node=web01 "
        "BOOTIF=01-52-54-00-12-34-56");
  d.target = BootTarget::kDiscover;
  d.kernel_args = "quiet\nrm -rf";  // a newline must not end the APPEND line
  CHECK(KernelCommandLine(M(), d, {}, kUrl) ==
        "kiln.server=http://10.0.0.1:7070 kiln.mode=discover kiln.node=web01 kiln.token=tok123 "
        "BOOTIF=01-52-54-00-12-34-56 quiet rm -rf");
}

TEST_CASE("GRUB config and dispatcher") {
  CHECK(RenderGrub(M(), Install(), Settings(), kUrl) ==
        "# kiln: web01 (52:54:00:12:34:56) boots install\n"
        "set timeout=0\n"
        "set default=0\n"
        "menuentry \"kiln: install\" {\n"
        "  echo \"kiln: loading the install environment\"\n"
        "  linux /kiln/vmlinuz kiln.server=http://10.0.0.1:7070 kiln.mode=install kiln.node=web01 "
        "kiln.token=tok123 BOOTIF=01-52-54-00-12-34-56 console=ttyS0,115200\n"
        "  initrd /kiln/initrd.img\n"
        "}\n");
  BootDecision local = Install();
  local.target = BootTarget::kLocalboot;
  CHECK(RenderGrub(M(), local, Settings(), kUrl).find("  exit\n") != std::string::npos);
  CHECK(RenderGrubDispatcher().find("configfile /grub/kiln/${net_default_mac}.cfg") !=
        std::string::npos);
}

TEST_CASE("iPXE script fetches kernel and initrd over HTTP") {
  CHECK(RenderIpxe(M(), Install(), Settings(), kUrl) ==
        "#!ipxe\n"
        "# kiln: web01 (52:54:00:12:34:56) boots install\n"
        "kernel http://10.0.0.1:7070/boot/files/kiln/vmlinuz initrd=initrd.img "
        "kiln.server=http://10.0.0.1:7070 kiln.mode=install kiln.node=web01 kiln.token=tok123 "
        "BOOTIF=01-52-54-00-12-34-56 console=ttyS0,115200\n"
        "initrd --name initrd.img http://10.0.0.1:7070/boot/files/kiln/initrd.img\n"
        "boot\n");
  BootDecision local = Install();
  local.target = BootTarget::kLocalboot;
  CHECK(RenderIpxe(M(), local, Settings(), kUrl) ==
        "#!ipxe\n# kiln: web01 (52:54:00:12:34:56) boots localboot\nexit\n");
  std::string chain = RenderIpxeChain(kUrl);
  CHECK(chain.find("chain --autofree http://10.0.0.1:7070/boot/ipxe?mac=${netX/mac:hexhyp}"
                   "&platform=${platform}&arch=${buildarch} || goto failed") != std::string::npos);
}

TEST_CASE("a node waiting for an install slot gets no token and asks again") {
  BootDecision d = Install();
  d.token.clear();
  d.wait = "install wave w-1: 2 of 2 installing, 1 other(s) waiting";
  CHECK(RenderIpxe(M(), d, Settings(), kUrl) ==
        "#!ipxe\n"
        "# kiln: web01 (52:54:00:12:34:56) waits to install\n"
        "echo kiln: install wave w-1: 2 of 2 installing, 1 other(s) waiting; asking again in 30 "
        "seconds\n"
        "sleep 30\n"
        "chain --autofree http://10.0.0.1:7070/boot/ipxe?mac=52:54:00:12:34:56\n");
  std::string pxelinux = RenderPxelinux(M(), d, Settings(), kUrl);
  CHECK(pxelinux ==
        "# kiln: web01 (52:54:00:12:34:56) waits to install\n"
        "SAY kiln: install wave w-1: 2 of 2 installing, 1 other(s) waiting; rebooting in 30 "
        "seconds to ask again\n"
        "DEFAULT wait\n"
        "PROMPT 1\n"
        "TIMEOUT 300\n"
        "LABEL wait\n"
        "  COM32 reboot.c32\n");
  d.wait = "quote \" and $var";
  std::string grub = RenderGrub(M(), d, Settings(), kUrl);
  CHECK(grub.find("echo \"kiln: quote  and var; rebooting in 30 seconds to ask again\"") !=
        std::string::npos);
  CHECK(grub.find("  reboot\n") != std::string::npos);
  CHECK(grub.find("linux") == std::string::npos);
}
