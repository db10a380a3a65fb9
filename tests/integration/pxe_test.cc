// Network boot driven as a user would: `kiln serve --tftp`, the `kiln node`
// CLI, the real tftp-hpa client and curl's tftp://, and the HTTP boot
// routes an iPXE machine uses.

#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include "common/file_util.h"
#include "common/http_client.h"
#include "common/json.h"
#include "common/strings.h"
#include "tests/support/kiln_server.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"

using namespace kiln;
using namespace kiln::test;

namespace {

const char* kMac = "52:54:00:12:34:56";
const char* kMacFile = "pxelinux.cfg/01-52-54-00-12-34-56";

// A server with TFTP on a free loopback port.
struct PxeServer {
  KilnServer server{{"--tftp", "127.0.0.1:0", "--kernel-args", "console=ttyS0"}};
  std::string tftp_port;
  TempDir work;

  PxeServer() {
    auto st = server.Kiln({"status", "--json"});
    REQUIRE(st.exit_code == 0);
    auto j = ParseJson(st.out);
    REQUIRE(j.ok());
    std::string listen = (*j)["tftp"]["listen"];
    tftp_port = Split(listen, ':').back();
    CHECK((*j)["tftp"]["state"] == "running");
    CHECK((*j)["dhcp"]["state"] == "off");
  }
  RunResult Kiln(std::vector<std::string> args) const { return server.Kiln(std::move(args)); }
  // tftp-hpa: returns the file's content, or "" with the client's output in err.
  std::string TftpGet(const std::string& remote, const std::string& mode = "binary",
                      std::string* err = nullptr) {
    std::string local = work.Sub("got-" + std::to_string(counter_++));
    auto r = Run({"tftp", "-m", mode, "127.0.0.1", tftp_port, "-c", "get", remote, local});
    if (err) *err = r.out + r.err;
    return ReadFile(local).value_or("");
  }
  // curl tftp:// with blksize; exit code in *code.
  std::string CurlGet(const std::string& remote, int* code = nullptr) {
    std::string local = work.Sub("curl-" + std::to_string(counter_++));
    auto r = Run({"curl", "-s", "--tftp-blksize", "1468", "-o", local,
                  "tftp://127.0.0.1:" + tftp_port + "/" + remote});
    if (code) *code = r.exit_code;
    return ReadFile(local).value_or("");
  }
  std::string Http(const std::string& path, long* status = nullptr) {
    HttpClient c(server.url(), "");
    auto r = c.Do("GET", path);
    REQUIRE(r.ok());
    if (status) *status = r->status;
    return r->body;
  }

 private:
  int counter_ = 0;
};

std::string TokenIn(const std::string& cfg) {
  size_t p = cfg.find("kiln.token=");
  if (p == std::string::npos) return "";
  size_t e = cfg.find_first_of(" \n", p);
  return cfg.substr(p + 11, e - p - 11);
}

}  // namespace

TEST_CASE("tftp-hpa and curl fetch pxelinux.0 and a node's config, which follows kiln node boot") {
  PxeServer s;
  auto add = s.Kiln({"node", "add", "web01", "--mac", kMac, "--class", "WEB", "--image", "web@1"});
  INFO(add.err);
  REQUIRE(add.exit_code == 0);
  CHECK(add.out == "added web01 (52:54:00:12:34:56); next boot: localboot\n");

  // The boot loader, byte for byte from Debian's package.
  std::string want = *ReadFile("/usr/lib/PXELINUX/pxelinux.0");
  CHECK(s.TftpGet("pxelinux.0") == want);
  CHECK(s.CurlGet("pxelinux.0") == want);

  // Added nodes boot their disk until told to install.
  CHECK(s.TftpGet(kMacFile, "netascii").find("LOCALBOOT 0") != std::string::npos);

  auto inst = s.Kiln({"node", "install", "web01"});
  REQUIRE(inst.exit_code == 0);
  CHECK(inst.out == "web01 installs web@1 at its next network boot\n");
  std::string cfg = s.TftpGet(kMacFile, "netascii");
  INFO(cfg);
  CHECK(cfg.find("# kiln: web01 (52:54:00:12:34:56) boots install\n") == 0);
  CHECK(cfg.find("  KERNEL kiln/vmlinuz\n  INITRD kiln/initrd.img\n") != std::string::npos);
  CHECK(cfg.find("APPEND kiln.server=" + s.server.url() +
                 " kiln.mode=install kiln.node=web01 "
                 "kiln.token=") != std::string::npos);
  CHECK(cfg.find(" console=ttyS0\n  IPAPPEND 2\n") != std::string::npos);
  CHECK(TokenIn(cfg).size() == 32);
  CHECK(s.CurlGet(kMacFile) == cfg);

  auto boot = s.Kiln({"node", "boot", "web01", "localboot"});
  REQUIRE(boot.exit_code == 0);
  CHECK(boot.out == "web01 boots localboot next\n");
  std::string local = s.CurlGet(kMacFile);
  CHECK(local.find("boots localboot") != std::string::npos);
  CHECK(local.find("LOCALBOOT 0") != std::string::npos);
  CHECK(local.find("kiln.token") == std::string::npos);

  // GRUB asks through its dispatcher, by MAC.
  CHECK(s.CurlGet("grub/grub.cfg").find("configfile /grub/kiln/${net_default_mac}.cfg") !=
        std::string::npos);
  CHECK(s.CurlGet("grub/kiln/52:54:00:12:34:56.cfg").find("exit") != std::string::npos);

  auto ls = s.Kiln({"node", "ls"});
  CHECK(ls.out.find("web01") != std::string::npos);
  CHECK(ls.out.find("localboot") != std::string::npos);
  auto st = s.Kiln({"status"});
  CHECK(st.out.find("tftp") != std::string::npos);
  CHECK(st.out.find("completed=") != std::string::npos);
}

TEST_CASE("an unknown MAC boots discover, appears in kiln node ls, and kiln node add adopts it") {
  PxeServer s;
  std::string cfg = s.CurlGet("pxelinux.cfg/01-52-54-00-ab-cd-ef");
  CHECK(cfg.find("kiln.mode=discover kiln.node=mac-525400abcdef kiln.token=") != std::string::npos);
  REQUIRE(WaitUntil([&] {
    return s.Kiln({"node", "ls", "--json"}).out.find("mac-525400abcdef") != std::string::npos;
  }));
  auto show = s.Kiln({"node", "show", "52:54:00:ab:cd:ef", "--json"});
  REQUIRE(show.exit_code == 0);
  auto j = *ParseJson(show.out);
  CHECK(j["state"] == "discovered");
  CHECK(j["boot"] == "discover");
  CHECK(!j.contains("enroll_token"));  // secrets never leave the server
  // The same token on the next request: one discovered node, not two.
  CHECK(TokenIn(s.CurlGet("pxelinux.cfg/01-52-54-00-ab-cd-ef")) == TokenIn(cfg));

  auto add =
      s.Kiln({"node", "add", "db01", "--mac", "52-54-00-AB-CD-EF", "--boot", "install", "--json"});
  REQUIRE(add.exit_code == 0);
  CHECK((*ParseJson(add.out))["boot"] == "install");
  auto ls = *ParseJson(s.Kiln({"node", "ls", "--json"}).out);
  REQUIRE(ls["nodes"].size() == 1);
  CHECK(ls["nodes"][0]["id"] == "db01");
  CHECK(s.CurlGet("pxelinux.cfg/01-52-54-00-ab-cd-ef").find("kiln.node=db01") != std::string::npos);
}

TEST_CASE(
    "iPXE gets its script over HTTP, kernel and initrd by sendfile, and a token that works once") {
  PxeServer s;
  std::string kernel(300000, 'K');
  WriteTestFile(s.server.data_dir() + "/boot/kiln/vmlinuz", kernel);
  WriteTestFile(s.server.data_dir() + "/boot/kiln/initrd.img", "INITRD");
  REQUIRE(s.Kiln({"node", "add", "web01", "--mac", kMac, "--boot", "install"}).exit_code == 0);
  REQUIRE(s.Kiln({"node", "add", "web02", "--mac", "52:54:00:00:00:02"}).exit_code == 0);

  std::string chain = s.Http("/boot/ipxe");
  CHECK(chain.find("#!ipxe\n") == 0);
  CHECK(chain.find("chain --autofree " + s.server.url() + "/boot/ipxe?mac=${netX/mac:hexhyp}") !=
        std::string::npos);

  std::string script = s.Http("/boot/ipxe?mac=52-54-00-12-34-56&platform=pcbios&arch=x86_64");
  INFO(script);
  CHECK(script.find("#!ipxe\n# kiln: web01 (52:54:00:12:34:56) boots install\n") == 0);
  CHECK(script.find("kernel " + s.server.url() +
                    "/boot/files/kiln/vmlinuz initrd=initrd.img "
                    "kiln.server=" +
                    s.server.url() +
                    " kiln.mode=install kiln.node=web01 "
                    "kiln.token=") != std::string::npos);
  CHECK(script.find("initrd --name initrd.img " + s.server.url() +
                    "/boot/files/kiln/initrd.img\n") != std::string::npos);
  CHECK(s.Http("/boot/files/kiln/vmlinuz") == kernel);
  CHECK(s.Http("/boot/files//kiln/./initrd.img") == "INITRD");

  // The agent trades the one-time token for a node token.
  std::string token = TokenIn(script);
  REQUIRE(token.size() == 32);
  HttpClient anon(s.server.url(), "");
  auto enroll = anon.Do("POST", "/api/v1/enroll", Json{{"token", token}}.dump(),
                        {.content_type = "application/json"});
  REQUIRE(enroll.ok());
  REQUIRE(enroll->status == 200);
  auto ej = *ParseJson(enroll->body);
  CHECK(ej["node"]["id"] == "web01");
  std::string node_token = ej["token"];
  auto twice = anon.Do("POST", "/api/v1/enroll", Json{{"token", token}}.dump(),
                       {.content_type = "application/json"});
  CHECK(twice->status == 401);
  CHECK(twice->body.find("enrollment token is not valid") != std::string::npos);
  // The next boot carries a fresh token.
  std::string next = TokenIn(s.Http("/boot/ipxe?mac=52:54:00:12:34:56"));
  CHECK(!next.empty());
  CHECK(next != token);

  // The node token reads and reports for its own node only.
  HttpClient agent(s.server.url(), node_token);
  CHECK(agent.Do("GET", "/api/v1/nodes/web01")->status == 200);
  CHECK(agent.Do("GET", "/api/v1/nodes/web02")->status == 403);
  CHECK(agent.Do("GET", "/api/v1/nodes/nobody")->status == 403);
  CHECK(
      agent.Do("POST", "/api/v1/nodes/web02/installed", "{}", {.content_type = "application/json"})
          ->status == 403);
  CHECK(agent.Do("GET", "/api/v1/nodes")->status == 403);
  auto done = agent.Do("POST", "/api/v1/nodes/web01/installed", R"({"image":"web@7"})",
                       {.content_type = "application/json"});
  REQUIRE(done->status == 200);
  auto dj = *ParseJson(done->body);
  CHECK(dj["state"] == "installed");
  CHECK(dj["boot"] == "localboot");
  CHECK(dj["installed_image"] == "web@7");
  CHECK(s.Http("/boot/ipxe?mac=52:54:00:12:34:56").find("\nexit\n") != std::string::npos);
  CHECK(s.CurlGet(kMacFile).find("LOCALBOOT 0") != std::string::npos);
}

TEST_CASE("boot routes refuse bad MACs and paths outside the boot tree") {
  PxeServer s;
  WriteTestFile(s.server.data_dir() + "/outside", "secret");
  REQUIRE(::symlink("../outside", (s.server.data_dir() + "/boot/escape").c_str()) == 0);
  long status = 0;
  CHECK(s.Http("/boot/ipxe?mac=zz:zz", &status) ==
        "kiln: \"zz:zz\" is not a MAC address (expected six hex pairs like 52:54:00:12:34:56)\n");
  CHECK(status == 400);
  CHECK(s.Http("/boot/ipxe?mac=ff:ff:ff:ff:ff:ff", &status).find("broadcast") != std::string::npos);
  s.Http("/boot/files/escape", &status);
  CHECK(status == 403);
  s.Http("/boot/files/%2e%2e/outside", &status);
  CHECK((status == 403 || status == 404));
  s.Http("/boot/files/nothing-here", &status);
  CHECK(status == 404);
  s.Http("/boot/files/kiln", &status);  // a directory
  CHECK(status == 403);

  // Over TFTP: errors, never a file from outside.
  int code = 0;
  CHECK(s.CurlGet("../outside", &code).empty());
  CHECK(code != 0);
  CHECK(s.CurlGet("escape", &code).empty());
  CHECK(code != 0);
  std::string err;
  CHECK(s.TftpGet("/etc/passwd", "binary", &err).empty());
  CHECK(err.find("no such file") != std::string::npos);
  // WRQ through the real client.
  WriteTestFile(s.work.Sub("up"), "data");
  auto put = Run({"tftp", "127.0.0.1", s.tftp_port, "-c", "put", s.work.Sub("up"), "up"});
  CHECK((put.out + put.err).find("read-only") != std::string::npos);
  CHECK(access((s.server.data_dir() + "/boot/up").c_str(), F_OK) != 0);
}

TEST_CASE("kiln node gives clear one-line errors for bad MACs, names, targets and unknown nodes") {
  PxeServer s;
  auto bad_mac = s.Kiln({"node", "add", "web01", "--mac", "52:54:00:12:34"});
  CHECK(bad_mac.exit_code == 2);
  CHECK(bad_mac.err ==
        "kiln node add: \"52:54:00:12:34\" is not a MAC address (expected six hex "
        "pairs like 52:54:00:12:34:56)\n");
  auto bad_name = s.Kiln({"node", "add", "Web_01", "--mac", kMac});
  CHECK(bad_name.exit_code == 2);
  CHECK(bad_name.err.find("kiln node add: node name \"Web_01\" is not valid") == 0);
  auto no_mac = s.Kiln({"node", "add", "web01"});
  CHECK(no_mac.exit_code == 2);
  CHECK(no_mac.err.find("--mac") != std::string::npos);

  REQUIRE(s.Kiln({"node", "add", "web01", "--mac", kMac}).exit_code == 0);
  auto dup = s.Kiln({"node", "add", "web01", "--mac", "52:54:00:00:00:09"});
  CHECK(dup.exit_code == 1);
  CHECK(dup.err == "kiln node add: node web01 already exists\n");
  auto dup_mac = s.Kiln({"node", "add", "web02", "--mac", "52-54-00-12-34-56"});
  CHECK(dup_mac.exit_code == 1);
  CHECK(dup_mac.err == "kiln node add: MAC 52:54:00:12:34:56 already belongs to node web01\n");

  auto missing = s.Kiln({"node", "show", "web09"});
  CHECK(missing.exit_code == 4);
  CHECK(missing.err == "kiln node show: no node is named or has the MAC \"web09\"\n");
  CHECK(s.Kiln({"node", "boot", "web09", "install"}).exit_code == 4);
  CHECK(s.Kiln({"node", "rm", "web09"}).exit_code == 4);
  auto target = s.Kiln({"node", "boot", "web01", "reinstall"});
  CHECK(target.exit_code == 2);
  CHECK(target.err.find("reinstall") != std::string::npos);

  auto rm = s.Kiln({"node", "rm", "web01", "--json"});
  CHECK(rm.exit_code == 0);
  CHECK((*ParseJson(rm.out))["removed"][0] == "web01");
  CHECK(s.Kiln({"node", "ls"}).out.find("no nodes") == 0);
}

TEST_CASE("nodes survive a restart of kiln serve") {
  std::string data;
  TempDir keep;
  {
    KilnServer server({"--tftp", "127.0.0.1:0"});
    REQUIRE(server.Kiln({"node", "add", "web01", "--mac", kMac, "--boot", "install"}).exit_code ==
            0);
    data = server.data_dir();
    REQUIRE(server.Stop() == 0);
    REQUIRE(Run({"cp", "-a", data, keep.Sub("data")}).exit_code == 0);
  }
  KilnServer again(keep.Sub("data"), {});
  auto show = again.Kiln({"node", "show", "web01", "--json"});
  REQUIRE(show.exit_code == 0);
  CHECK((*ParseJson(show.out))["boot"] == "install");
}

TEST_CASE("kiln node and kiln pxe --help explain every subcommand") {
  auto node = Run({KILN_EXE, "node", "--help"});
  CHECK(node.exit_code == 0);
  for (const char* w : {"add", "ls", "show", "rm", "boot", "install", "Examples"})
    CHECK(node.out.find(w) != std::string::npos);
  auto add = Run({KILN_EXE, "node", "add", "--help"});
  for (const char* w : {"--mac", "--class", "--image", "--boot", "--json"})
    CHECK(add.out.find(w) != std::string::npos);
  auto ex = Run({KILN_EXE, "pxe", "export", "--help"});
  CHECK(ex.out.find("tftpd-hpa") != std::string::npos);
  auto serve = Run({KILN_EXE, "serve", "--help"});
  for (const char* w : {"--tftp", "--interface", "--dhcp", "--dhcp-range", "--boot-kernel",
                        "--advertise-url", "--bios-loader"})
    CHECK(serve.out.find(w) != std::string::npos);
}
