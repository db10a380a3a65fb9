// `kiln pxe export` writes the boot tree for a tftpd-hpa site: the real
// in.tftpd serves it, and what it serves is byte for byte what kiln's own
// TFTP server renders.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include "common/file_util.h"
#include "common/json.h"
#include "common/strings.h"
#include "tests/support/kiln_server.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"

using namespace kiln;
using namespace kiln::test;

namespace {

std::string FreeUdpPort() {
  UniqueFd fd(::socket(AF_INET, SOCK_DGRAM, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  socklen_t len = sizeof a;
  ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&a), &len);
  return std::to_string(ntohs(a.sin_port));
}

std::string Get(const std::string& port, const std::string& remote, const std::string& local) {
  ::unlink(local.c_str());
  Run({"tftp", "-m", "binary", "127.0.0.1", port, "-c", "get", remote, local});
  return ReadFile(local).value_or("(missing)");
}

}  // namespace

TEST_CASE("kiln pxe export writes a tree that in.tftpd serves exactly as kiln does") {
  KilnServer server({"--tftp", "127.0.0.1:0", "--advertise-url", "http://10.0.0.1:7070"});
  auto st = *ParseJson(server.Kiln({"status", "--json"}).out);
  std::string kiln_port = Split(st["tftp"]["listen"].get<std::string>(), ':').back();
  WriteTestFile(server.data_dir() + "/boot/kiln/vmlinuz", "KERNEL");
  WriteTestFile(server.data_dir() + "/boot/kiln/initrd.img", "INITRD");
  REQUIRE(server.Kiln({"node", "add", "web01", "--mac", "52:54:00:00:00:01", "--boot", "install"})
              .exit_code == 0);
  REQUIRE(server.Kiln({"node", "add", "web02", "--mac", "52:54:00:00:00:02"}).exit_code == 0);

  TempDir t;
  std::string dir = t.Sub("tftp");
  auto ex = server.Kiln({"pxe", "export", dir, "--json"});
  INFO(ex.err);
  REQUIRE(ex.exit_code == 0);
  auto summary = *ParseJson(ex.out);
  CHECK(summary["configs"] == 7);  // 2 nodes x (PXELINUX + GRUB) + default + 2 dispatchers
  CHECK(summary["server_url"] == "http://10.0.0.1:7070");
  CHECK(*ReadFile(dir + "/kiln/vmlinuz") == "KERNEL");
  CHECK(*ReadFile(dir + "/pxelinux.0") == *ReadFile("/usr/lib/PXELINUX/pxelinux.0"));
  CHECK(access((dir + "/ldlinux.c32").c_str(), R_OK) == 0);
  CHECK(access((dir + "/undionly.kpxe").c_str(), R_OK) == 0);
  CHECK(access((dir + "/ipxe.efi").c_str(), R_OK) == 0);

  std::string port = FreeUdpPort();
  auto tftpd = Process::Start({"/usr/sbin/in.tftpd", "--foreground", "--listen", "--address",
                               "127.0.0.1:" + port, "--secure", dir});
  REQUIRE(tftpd.ok());
  std::string l = t.Sub("x");
  REQUIRE(WaitUntil([&] { return Get(port, "pxelinux.0", l) != "(missing)"; }));
  for (const char* f : {"pxelinux.cfg/01-52-54-00-00-00-01", "pxelinux.cfg/01-52-54-00-00-00-02",
                        "pxelinux.cfg/default", "grub/grub.cfg", "grub/kiln/52:54:00:00:00:01.cfg",
                        "kiln/initrd.img", "undionly.kpxe"}) {
    INFO(f);
    std::string from_tftpd = Get(port, f, l);
    CHECK(from_tftpd != "(missing)");
    CHECK(from_tftpd == Get(kiln_port, f, l));
  }
  CHECK(Get(port, "pxelinux.cfg/01-52-54-00-00-00-01", l).find("kiln.mode=install") !=
        std::string::npos);

  // A node that goes loses its files at the next export; nothing else does.
  WriteTestFile(dir + "/site-notes.txt", "keep me");
  REQUIRE(server.Kiln({"node", "rm", "web02"}).exit_code == 0);
  auto again = server.Kiln({"pxe", "export", dir});
  REQUIRE(again.exit_code == 0);
  CHECK(again.out.find("exported 5 boot configs") == 0);
  CHECK(again.out.find("2 stale removed") != std::string::npos);
  CHECK(access((dir + "/pxelinux.cfg/01-52-54-00-00-00-02").c_str(), F_OK) != 0);
  CHECK(access((dir + "/pxelinux.cfg/01-52-54-00-00-00-01").c_str(), F_OK) == 0);
  CHECK(*ReadFile(dir + "/site-notes.txt") == "keep me");
  tftpd->Signal(SIGTERM);
  tftpd->Wait();
}

TEST_CASE("kiln pxe export without an install environment warns and still writes the tree") {
  KilnServer server;
  TempDir t;
  auto ex = server.Kiln({"pxe", "export", t.Sub("tftp")});
  CHECK(ex.exit_code == 0);
  CHECK(ex.err.find("warning: the server has no kiln/vmlinuz yet") != std::string::npos);
  CHECK(access(t.Sub("tftp/pxelinux.cfg/default").c_str(), R_OK) == 0);
  CHECK(ex.out.find("machines reach kiln at " + server.url()) != std::string::npos);
}
