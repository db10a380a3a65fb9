// DHCP for network boot, with real programs in network namespaces this
// test creates (private addresses only inside them, names prefixed kpxe):
//
//   kpxe<id>s  kiln serve --interface <bridge> (its supervised dnsmasq)
//   kpxe<id>t  a plain dnsmasq as the site's DHCP server (proxy test)
//   kpxe<id>c  busybox udhcpc sending PXE requests (vendor class
//              PXEClient, client architecture, iPXE's user class)
//
// The client namespace also listens on UDP 68 for the broadcast offers, so
// the test sees exactly what each server answered.

#include <arpa/inet.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <mutex>
#include <thread>

#include "common/file_util.h"
#include "common/json.h"
#include "common/strings.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"

using namespace kiln;
using namespace kiln::test;
using namespace std::chrono_literals;

namespace {

std::string Id() {
  static int n = 0;
  return std::to_string(::getpid() % 100000) + std::to_string(n++);
}

std::string Join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& a : v) s += a + " ";
  return s;
}

RunResult Must(const std::vector<std::string>& argv) {
  auto r = Run(argv);
  INFO(Join(argv) << "\n" << r.out << r.err);
  REQUIRE(r.exit_code == 0);
  return r;
}

struct Netns {
  std::string name;
  explicit Netns(std::string n) : name(std::move(n)) {
    Run({"ip", "netns", "del", name});
    Must({"ip", "netns", "add", name});
    Exec({"ip", "link", "set", "lo", "up"});
  }
  ~Netns() { Run({"ip", "netns", "del", name}); }
  std::vector<std::string> Cmd(std::vector<std::string> argv) const {
    argv.insert(argv.begin(), {"ip", "netns", "exec", name});
    return argv;
  }
  RunResult Exec(std::vector<std::string> argv) const { return Must(Cmd(std::move(argv))); }
};

struct Offer {
  int type = 0;        // option 53
  std::string server;  // option 54
  std::string yiaddr, siaddr, file;
};

// Collects DHCP replies broadcast on the client side, from a thread that
// joins the client's network namespace.
class OfferCapture {
 public:
  explicit OfferCapture(const std::string& ns) {
    thread_ = std::thread([this, ns] { Run(ns); });
    REQUIRE(WaitUntil([&] { return ready_.load(); }));
    REQUIRE(error_.empty());
  }
  ~OfferCapture() {
    stop_ = true;
    thread_.join();
  }
  std::vector<Offer> offers() {
    std::lock_guard l(mu_);
    return offers_;
  }
  bool Has(const std::function<bool(const Offer&)>& pred) {
    for (const auto& o : offers())
      if (pred(o)) return true;
    return false;
  }
  void Clear() {
    std::lock_guard l(mu_);
    offers_.clear();
  }

 private:
  void Run(const std::string& ns) {
    UniqueFd nsfd(::open(("/var/run/netns/" + ns).c_str(), O_RDONLY | O_CLOEXEC));
    UniqueFd sock;
    if (!nsfd.valid() || ::setns(nsfd.get(), CLONE_NEWNET) != 0) {
      error_ = "setns failed";
    } else {
      sock = UniqueFd(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
      int one = 1;
      ::setsockopt(sock.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
      ::setsockopt(sock.get(), SOL_SOCKET, SO_BROADCAST, &one, sizeof one);
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_port = htons(68);
      if (::bind(sock.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) error_ = "bind 68";
    }
    ready_ = true;
    if (!error_.empty()) return;
    while (!stop_) {
      pollfd p{sock.get(), POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      uint8_t buf[1500];
      ssize_t n = ::recv(sock.get(), buf, sizeof buf, 0);
      if (n < 240 || buf[0] != 2) continue;
      Offer o;
      char ip[INET_ADDRSTRLEN];
      ::inet_ntop(AF_INET, buf + 16, ip, sizeof ip);
      o.yiaddr = ip;
      ::inet_ntop(AF_INET, buf + 20, ip, sizeof ip);
      o.siaddr = ip;
      o.file.assign(reinterpret_cast<char*>(buf + 108),
                    strnlen(reinterpret_cast<char*>(buf + 108), 128));
      for (ssize_t i = 240; i + 1 < n && buf[i] != 255;) {
        if (buf[i] == 0) {
          ++i;
          continue;
        }
        uint8_t code = buf[i], len = buf[i + 1];
        if (i + 2 + len > n) break;
        if (code == 53 && len == 1) o.type = buf[i + 2];
        if (code == 54 && len == 4) {
          ::inet_ntop(AF_INET, buf + i + 2, ip, sizeof ip);
          o.server = ip;
        }
        i += 2 + len;
      }
      std::lock_guard l(mu_);
      offers_.push_back(o);
    }
  }

  std::thread thread_;
  std::atomic<bool> ready_{false}, stop_{false};
  std::string error_;
  std::mutex mu_;
  std::vector<Offer> offers_;
};

// The boot network: kiln's namespace with a bridge, and veth legs to the
// client's and the site server's namespaces.
struct BootNet {
  std::string id = Id();
  std::string subnet;  // "10.77.N"
  Netns srv{"kpxe" + id + "s"}, cli{"kpxe" + id + "c"}, site{"kpxe" + id + "t"};
  std::string bridge = "kpxb" + id;
  TempDir dir;

  BootNet() {
    subnet = "10.77." + std::to_string(::getpid() % 200 + 1);
    srv.Exec({"ip", "link", "add", bridge, "type", "bridge"});
    srv.Exec({"ip", "addr", "add", subnet + ".1/24", "dev", bridge});
    srv.Exec({"ip", "link", "set", bridge, "up"});
    for (Netns* ns : {&cli, &site}) {
      std::string leg = "kpxv" + id + ns->name.back();
      srv.Exec(
          {"ip", "link", "add", leg, "type", "veth", "peer", "name", "eth0", "netns", ns->name});
      srv.Exec({"ip", "link", "set", leg, "master", bridge, "up"});
      ns->Exec({"ip", "link", "set", "eth0", "up"});
    }
    site.Exec({"ip", "addr", "add", subnet + ".2/24", "dev", "eth0"});
  }

  // Starts `kiln serve` inside kiln's namespace and waits for serve.json.
  std::unique_ptr<Process> Kiln(std::vector<std::string> args) {
    std::vector<std::string> argv =
        srv.Cmd({KILN_EXE, "serve", "--data", dir.Sub("data"), "--listen", "127.0.0.1:0"});
    argv.insert(argv.end(), args.begin(), args.end());
    auto p = Process::Start(argv);
    REQUIRE(p.ok());
    auto proc = std::make_unique<Process>(std::move(*p));
    bool up = WaitUntil(
        [&] { return !proc->Running() || access(dir.Sub("data/serve.json").c_str(), F_OK) == 0; });
    INFO(proc->Stderr());
    REQUIRE(up);
    REQUIRE(proc->Running());
    return proc;
  }
  Json Status() {
    auto r = srv.Exec({KILN_EXE, "status", "--json", "--data", dir.Sub("data")});
    return *ParseJson(r.out);
  }
  // One PXE DHCP exchange from the client namespace.
  RunResult Udhcpc(std::vector<std::string> extra) {
    std::string script = dir.Sub("udhcpc.sh");
    WriteTestFile(script, "#!/bin/sh\necho \"$1 ip=$ip siaddr=$siaddr boot_file=$boot_file\" >> " +
                              dir.Sub("lease") + "\n");
    ::chmod(script.c_str(), 0755);
    std::vector<std::string> argv = cli.Cmd({"busybox", "udhcpc", "-i", "eth0", "-f", "-q", "-n",
                                             "-B", "-t", "2", "-T", "1", "-s", script});
    argv.insert(argv.end(), extra.begin(), extra.end());
    return Run(argv, {}, 30s);
  }
};

const std::vector<std::string> kBiosPxe = {
    "-V", "PXEClient:Arch:00000:UNDI:002001", "-x", "0x5d:0000", "-x", "0x5e:010201"};
const std::vector<std::string> kUefiPxe = {
    "-V", "PXEClient:Arch:00007:UNDI:003016", "-x", "0x5d:0007", "-x", "0x5e:010300"};
const std::vector<std::string> kIpxe = {
    "-V",      "PXEClient:Arch:00000:UNDI:002001", "-x", "0x5d:0000", "-x", "0x4d:69505845", "-x",
    "175:0101"};

}  // namespace

TEST_CASE(
    "proxy-DHCP beside a site DHCP server: PXE offers carry kiln's TFTP server and boot file") {
  BootNet net;
  std::string site_conf = net.dir.Sub("site.conf");
  WriteTestFile(site_conf,
                "port=0\ninterface=eth0\nbind-interfaces\npid-file=\nno-ping\n"
                "dhcp-range=" +
                    net.subnet + ".100," + net.subnet +
                    ".150,255.255.255.0,1h\n"
                    "dhcp-leasefile=" +
                    net.dir.Sub("site.leases") + "\n");
  auto site = Process::Start(net.site.Cmd(
      {"dnsmasq", "--keep-in-foreground", "--conf-file=" + site_conf, "--log-facility=-"}));
  REQUIRE(site.ok());
  auto kiln = net.Kiln({"--interface", net.bridge, "--dhcp-log"});  // proxy is the default
  std::string server = net.subnet + ".1";
  REQUIRE(WaitUntil([&] { return net.Status()["dhcp"].value("state", "") == "running"; }));
  auto st = net.Status();
  CHECK(st["dhcp"]["mode"] == "proxy");
  CHECK(st["tftp"]["listen"] == server + ":69");

  OfferCapture cap(net.cli.name);
  auto offered = [&](const std::string& file) {
    return cap.Has([&](const Offer& o) {
      return o.server == server && o.siaddr == server && o.file == file && o.yiaddr == "0.0.0.0";
    });
  };
  net.Udhcpc(kBiosPxe);
  CHECK(WaitUntil([&] { return offered("undionly.kpxe"); }, 10s));
  // The site server leased an address in the same exchange.
  CHECK(cap.Has([&](const Offer& o) {
    return o.server == net.subnet + ".2" && StartsWith(o.yiaddr, net.subnet + ".1");
  }));
  net.Udhcpc(kUefiPxe);
  bool uefi = WaitUntil([&] { return offered("ipxe.efi"); }, 10s);
  INFO(kiln->Stderr());
  CHECK(uefi);
  net.Udhcpc(kIpxe);
  std::string ipxe_url = "http://" + server + ":" +
                         Split(ReadFile(net.dir.Sub("data/serve.json")).value_or(""), ':').back();
  CHECK(WaitUntil(
      [&] {
        return cap.Has([&](const Offer& o) {
          return o.server == server && StartsWith(o.file, "http://" + server + ":") &&
                 EndsWith(o.file, "/boot/ipxe");
        });
      },
      10s));
  // A plain DHCP client (no PXE vendor class) gets nothing from kiln.
  cap.Clear();
  net.Udhcpc({});
  CHECK(!cap.Has([&](const Offer& o) { return o.server == server; }));

  // The boot file really is there, over TFTP from the client's side.
  net.cli.Exec({"ip", "addr", "add", net.subnet + ".50/24", "dev", "eth0"});
  std::string got = net.dir.Sub("undionly.kpxe");
  net.cli.Exec({"tftp", "-m", "binary", server, "-c", "get", "undionly.kpxe", got});
  CHECK(*ReadFile(got) == *ReadFile("/usr/lib/ipxe/undionly.kpxe"));

  // dnsmasq's own log lines reach kiln's log.
  CHECK(kiln->Stderr().find("dnsmasq log line=\"dnsmasq-dhcp") != std::string::npos);

  // Killed, dnsmasq comes back, and kiln status tells the truth meanwhile.
  int pid = st["dhcp"]["pid"];
  REQUIRE(pid > 0);
  ::kill(pid, SIGKILL);
  REQUIRE(WaitUntil([&] {
    auto d = net.Status()["dhcp"];
    return d.value("starts", 0) == 2 && d.value("state", "") == "running" &&
           d.value("pid", 0) != pid;
  }));
  CHECK(net.Status()["dhcp"]["last_exit"] == "killed by signal 9");
  cap.Clear();
  net.Udhcpc(kBiosPxe);
  CHECK(WaitUntil([&] { return offered("undionly.kpxe"); }, 10s));

  // Stopping kiln stops its dnsmasq.
  int pid2 = net.Status()["dhcp"]["pid"];
  kiln->Signal(SIGTERM);
  CHECK(kiln->Wait() == 0);
  CHECK(::kill(pid2, 0) != 0);
  site->Signal(SIGTERM);
  site->Wait();
}

TEST_CASE("full DHCP on an isolated network: the lease itself names the boot server and file") {
  BootNet net;
  auto kiln = net.Kiln({"--interface", net.bridge, "--dhcp", "full", "--dhcp-range",
                        net.subnet + ".100," + net.subnet + ".150,255.255.255.0,1h",
                        "--bios-loader", "pxelinux.0"});
  REQUIRE(WaitUntil([&] { return net.Status()["dhcp"].value("state", "") == "running"; }));
  auto r = net.Udhcpc(kBiosPxe);
  INFO(r.out << r.err);
  CHECK(r.exit_code == 0);
  std::string lease = ReadFile(net.dir.Sub("lease")).value_or("");
  INFO(lease);
  CHECK(lease.find("bound ip=" + net.subnet + ".1") != std::string::npos);
  CHECK(lease.find("siaddr=" + net.subnet + ".1 boot_file=pxelinux.0") != std::string::npos);
  auto conf = ReadFile(net.dir.Sub("data/dnsmasq/dnsmasq.conf")).value_or("");
  CHECK(conf.find("no-ping") != std::string::npos);
  kiln->Signal(SIGTERM);
  CHECK(kiln->Wait() == 0);
}

TEST_CASE("DHCP settings kiln cannot use stop kiln serve with a clear error") {
  TempDir t;
  auto no_if =
      Run({KILN_EXE, "serve", "--data", t.Sub("d"), "--listen", "127.0.0.1:0", "--dhcp", "proxy"});
  CHECK(no_if.exit_code == 2);
  CHECK(no_if.err.find("kiln serve: --dhcp proxy needs --interface (the boot network)") !=
        std::string::npos);
  auto missing = Run({KILN_EXE, "serve", "--data", t.Sub("d"), "--listen", "127.0.0.1:0",
                      "--interface", "kpxe-nonexistent0"});
  CHECK(missing.exit_code == 1);
  CHECK(missing.err.find("network interface kpxe-nonexistent0 does not exist") !=
        std::string::npos);

  BootNet net;
  std::vector<std::string> argv =
      net.srv.Cmd({KILN_EXE, "serve", "--data", net.dir.Sub("data"), "--listen", "127.0.0.1:0",
                   "--interface", net.bridge, "--dhcp", "full", "--dhcp-range", "10.0.0.5,banana"});
  auto bad = Run(argv);
  CHECK(bad.exit_code == 2);
  CHECK(bad.err.find("dnsmasq rejects") != std::string::npos);
  CHECK(bad.err.find("bad dhcp-range") != std::string::npos);
}
