#include "tests/coord/zk_test_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include "common/file_util.h"

namespace kiln::test {
namespace {

int FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

}  // namespace

namespace {
constexpr const char* kZkJar = "/usr/share/java/zookeeper.jar";
}  // namespace

std::string ZkUnavailableReason() {
  if (::access(kZkJar, R_OK) != 0)
    return std::string("no ZooKeeper server here: ") + kZkJar +
           " is missing (install Debian's zookeeper package; scripts/bootstrap does)";
  if (::access("/usr/bin/java", X_OK) != 0)
    return "no ZooKeeper server here: /usr/bin/java is missing (install default-jre-headless)";
  return "";
}

bool ZkAvailable() {
  return ZkUnavailableReason().empty();
}

std::string ZkFourLetter(int port, const std::string& cmd) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(port));
  // A server still starting may accept the connection and never close it
  // (ZooKeeper 3.8 fails to close a command socket that arrives before its
  // database is loaded): never wait on it for long.
  timeval tv{.tv_sec = 2, .tv_usec = 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  std::string out;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
      ::write(fd, cmd.data(), cmd.size()) == static_cast<ssize_t>(cmd.size())) {
    char buf[4096];
    ssize_t n;
    while ((n = ::read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

ZkTestServer::ZkTestServer() : dir_(std::make_unique<TempDir>()) {
  port_ = FreePort();
  const std::string& d = dir_->path();
  WriteTestFile(d + "/zoo.cfg",
                "tickTime=100\n"
                "minSessionTimeout=200\n"
                "maxSessionTimeout=600000\n"
                "dataDir=" +
                    d +
                    "/data\n"
                    "clientPort=" +
                    std::to_string(port_) +
                    "\n"
                    "clientPortAddress=127.0.0.1\n"
                    "admin.enableServer=false\n"
                    "4lw.commands.whitelist=ruok,srvr,stat,mntr\n"
                    "maxClientCnxns=0\n");
  WriteTestFile(d + "/log4j.properties",
                "log4j.rootLogger=WARN, F\n"
                "log4j.appender.F=org.apache.log4j.FileAppender\n"
                "log4j.appender.F.File=" +
                    d +
                    "/zookeeper.log\n"
                    "log4j.appender.F.layout=org.apache.log4j.PatternLayout\n"
                    "log4j.appender.F.layout.ConversionPattern=%d %p %c{1} %m%n\n");
  std::string cp = d +
                   ":/usr/share/java/zookeeper.jar:/usr/share/java/slf4j-log4j12.jar:"
                   "/usr/share/java/log4j-1.2.jar";
  // setpriv: the JVM dies with the test process, even when a test crashes.
  auto p = Process::Start({"setpriv", "--pdeathsig", "KILL", "--", "java", "-Xmx256m",
                           "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
                           "-Djute.maxbuffer=8388608", "-Dzookeeper.log.dir=" + d,
                           "-Dlog4j.configuration=file:" + d + "/log4j.properties", "-cp", cp,
                           "org.apache.zookeeper.server.ZooKeeperServerMain", d + "/zoo.cfg"});
  REQUIRE(p.ok());
  process_ = std::make_unique<Process>(std::move(*p));
  bool up = WaitUntil(
      [&] {
        return !process_->Running() ||
               ZkFourLetter(port_, "srvr").find("Zookeeper version") != std::string::npos;
      },
      std::chrono::seconds(60));
  INFO("zookeeper output:\n"
       << process_->Stdout() << process_->Stderr() << ReadFile(d + "/zookeeper.log").value_or(""));
  REQUIRE(up);
  REQUIRE(process_->Running());
}

ZkTestServer::~ZkTestServer() {
  if (process_ && process_->Running()) {
    process_->Signal(SIGTERM);
    if (process_->Wait(std::chrono::seconds(10)) < 0) process_->Signal(SIGKILL);
  }
}

ZkTestServer& ZkTestServer::Shared() {
  static ZkTestServer server;
  return server;
}

std::string ZkTestServer::hostport() const {
  return "127.0.0.1:" + std::to_string(port_);
}

}  // namespace kiln::test
