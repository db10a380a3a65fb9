// dnsmasq configurations: pinned text for proxy and full mode, checked by
// the real `dnsmasq --test`, and refused input with clear errors.

#include "pxe/dnsmasq_config.h"

#include <catch2/catch.hpp>

#include "common/file_util.h"
#include "tests/support/temp_dir.h"

using namespace kiln;
using namespace kiln::pxe;
using kiln::test::TempDir;

namespace {
DnsmasqConfig Proxy() {
  DnsmasqConfig c;
  c.mode = DhcpMode::kProxy;
  c.interface = "eth1";
  c.server_ip = "10.0.0.1";
  c.network = "10.0.0.0";
  c.netmask = "255.255.255.0";
  c.ipxe_url = "http://10.0.0.1:7070/boot/ipxe";
  return c;
}
}  // namespace

TEST_CASE("DHCP modes parse") {
  CHECK(*ParseDhcpMode("proxy") == DhcpMode::kProxy);
  CHECK(*ParseDhcpMode("full") == DhcpMode::kFull);
  CHECK(*ParseDhcpMode("off") == DhcpMode::kOff);
  CHECK(ParseDhcpMode("on").status().message() ==
        "unknown DHCP mode \"on\" (expected proxy, full or off)");
}

TEST_CASE("proxy-DHCP config: boot files by architecture, iPXE gets the HTTP script") {
  auto text = RenderDnsmasqConfig(Proxy());
  REQUIRE(text.ok());
  CHECK(*text ==
        "# Written by kiln serve at every start; edits are lost.\n"
        "# DHCP only: DNS is off, and kiln itself serves TFTP on 10.0.0.1.\n"
        "port=0\n"
        "interface=eth1\n"
        "bind-interfaces\n"
        "pid-file=\n"
        "\n"
        "# proxy-DHCP: the site's DHCP server leases addresses; we add boot information.\n"
        "dhcp-range=10.0.0.0,proxy,255.255.255.0\n"
        "\n"
        "# Who is asking: client architecture (option 93), and iPXE.\n"
        "dhcp-match=set:bios,option:client-arch,0\n"
        "dhcp-match=set:efi64,option:client-arch,7\n"
        "dhcp-match=set:efi64,option:client-arch,9\n"
        "dhcp-match=set:ipxe,175\n"
        "dhcp-userclass=set:ipxe,iPXE\n"
        "\n"
        "# iPXE fetches its script over HTTP; firmware chainloads a loader over TFTP.\n"
        "dhcp-boot=tag:ipxe,http://10.0.0.1:7070/boot/ipxe,,10.0.0.1\n"
        "dhcp-boot=tag:!ipxe,tag:efi64,ipxe.efi,,10.0.0.1\n"
        "dhcp-boot=tag:!ipxe,tag:bios,undionly.kpxe,,10.0.0.1\n"
        "pxe-prompt=\"kiln\",0\n"
        "pxe-service=tag:!ipxe,x86PC,\"kiln\",undionly.kpxe,10.0.0.1\n");
  TempDir t;
  REQUIRE(WriteFileAtomic(t.Sub("d.conf"), *text).ok());
  CHECK(TestDnsmasqConfig("dnsmasq", t.Sub("d.conf")).ok());
}

TEST_CASE("full DHCP config: ranges, leases, no waits, router advertisements") {
  DnsmasqConfig c = Proxy();
  c.mode = DhcpMode::kFull;
  c.ranges = {"10.0.0.100,10.0.0.200,255.255.255.0,1h"};
  c.lease_file = "/var/lib/kiln/dnsmasq/leases";
  c.ipv6 = "fd00::1";
  c.bios_loader = "pxelinux.0";
  auto text = RenderDnsmasqConfig(c);
  REQUIRE(text.ok());
  for (const char* line :
       {"dhcp-range=10.0.0.100,10.0.0.200,255.255.255.0,1h\n", "dhcp-authoritative\n", "no-ping\n",
        "dhcp-leasefile=/var/lib/kiln/dnsmasq/leases\n", "enable-ra\n",
        "dhcp-range=::,constructor:eth1,ra-only\n", "dhcp-option=tag:ipxe,encap:175,176,1\n",
        "dhcp-boot=tag:bios,pxelinux.0,,10.0.0.1\n",
        "dhcp-boot=tag:ipxe,tag:!bios,http://10.0.0.1:7070/boot/ipxe,,10.0.0.1\n"})
    CHECK(text->find(line) != std::string::npos);
  CHECK(text->find("pxe-service") == std::string::npos);
  CHECK(text->find("proxy") == std::string::npos);
  TempDir t;
  REQUIRE(WriteFileAtomic(t.Sub("d.conf"), *text).ok());
  CHECK(TestDnsmasqConfig("dnsmasq", t.Sub("d.conf")).ok());
}

TEST_CASE(
    "with PXELINUX as the BIOS loader, iPXE ROMs on BIOS boot it too, UEFI iPXE keeps the script") {
  CHECK(IsPxelinuxLoader("pxelinux.0"));
  CHECK(IsPxelinuxLoader("lpxelinux.0"));
  CHECK(IsPxelinuxLoader("bios/pxelinux.0"));
  CHECK_FALSE(IsPxelinuxLoader("undionly.kpxe"));
  CHECK_FALSE(IsPxelinuxLoader("mypxelinux.0"));
  DnsmasqConfig c = Proxy();
  c.bios_loader = "lpxelinux.0";
  auto text = RenderDnsmasqConfig(c);
  REQUIRE(text.ok());
  CHECK(text->find("dhcp-boot=tag:bios,lpxelinux.0,,10.0.0.1\n") != std::string::npos);
  CHECK(text->find("dhcp-boot=tag:ipxe,tag:!bios,http://") != std::string::npos);
  CHECK(text->find("pxe-service=x86PC,\"kiln\",lpxelinux.0,10.0.0.1\n") != std::string::npos);
  TempDir t;
  REQUIRE(WriteFileAtomic(t.Sub("d.conf"), *text).ok());
  CHECK(TestDnsmasqConfig("dnsmasq", t.Sub("d.conf")).ok());
}

TEST_CASE("bad DHCP settings are refused before dnsmasq sees them") {
  DnsmasqConfig c = Proxy();
  c.mode = DhcpMode::kFull;
  CHECK(RenderDnsmasqConfig(c).status().message() ==
        "--dhcp full needs at least one --dhcp-range START,END[,MASK][,LEASE]");
  c.ranges = {"10.0.0.100,10.0.0.200\nenable-tftp"};
  CHECK(RenderDnsmasqConfig(c).status().message() == "--dhcp-range contains a line break");
  c = Proxy();
  c.interface = "";
  CHECK(RenderDnsmasqConfig(c).status().message() == "DHCP needs an interface (--interface)");
  c = Proxy();
  c.mode = DhcpMode::kOff;
  CHECK(!RenderDnsmasqConfig(c).ok());
}

TEST_CASE("dnsmasq --test failures carry dnsmasq's message") {
  DnsmasqConfig c = Proxy();
  c.mode = DhcpMode::kFull;
  c.ranges = {"10.0.0.100,banana"};
  auto text = RenderDnsmasqConfig(c);
  REQUIRE(text.ok());
  TempDir t;
  REQUIRE(WriteFileAtomic(t.Sub("d.conf"), *text).ok());
  auto s = TestDnsmasqConfig("dnsmasq", t.Sub("d.conf"));
  REQUIRE(!s.ok());
  CHECK(s.message().find("dnsmasq rejects " + t.Sub("d.conf") + ": ") == 0);
  CHECK(s.message().find("bad dhcp-range") != std::string::npos);
}
