// The TFTP server on real loopback sockets: downloads with and without
// options, and every kind of bad input the issue lists. Silence is checked
// deterministically: junk is sent first, then a valid request, and the
// first reply must be the valid one (the server reads its socket in order).

#include "pxe/tftp_server.h"

#include <arpa/inet.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <random>

#include "tests/pxe/raw_tftp_client.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"

using namespace kiln;
using namespace kiln::pxe;
using namespace kiln::pxe::tftp;
using namespace kiln::test;
using namespace std::chrono_literals;

namespace {

UniqueFd BindLoopback() {
  UniqueFd fd(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  return fd;
}

std::string Pattern(size_t n, int seed = 0) {
  std::string s(n, '\0');
  std::mt19937 rng(static_cast<unsigned>(seed));
  for (auto& c : s) c = static_cast<char>(rng());
  return s;
}

struct Fixture {
  TempDir dir;
  std::unique_ptr<DirectoryContent> content;
  std::unique_ptr<TftpServer> server;

  explicit Fixture(TftpServerOptions opts = {}) {
    WriteTestFile(dir.Sub("root/pxelinux.0"), Pattern(40000, 1));
    WriteTestFile(dir.Sub("root/boot/vmlinuz"), Pattern(300000, 2));
    WriteTestFile(dir.Sub("root/text.cfg"), "line one\nline two\r\n");
    WriteTestFile(dir.Sub("root/exact"), Pattern(1024, 3));
    WriteTestFile(dir.Sub("secret"), "outside the root");
    REQUIRE(::symlink("../secret", dir.Sub("root/escape").c_str()) == 0);
    REQUIRE(::symlink("boot/vmlinuz", dir.Sub("root/linux").c_str()) == 0);
    content = *DirectoryContent::Create(dir.Sub("root"));
    auto s = TftpServer::Start(BindLoopback(), opts, content.get());
    REQUIRE(s.ok());
    server = std::move(*s);
  }
  uint16_t port() const { return server->port(); }
};

TftpServerOptions Quick() {
  TftpServerOptions o;
  o.limits.default_timeout = 50ms;
  o.limits.max_timeout = 100ms;
  o.limits.max_retries = 2;
  return o;
}

// An RFC 7440 receiver on a lossy path: it loses DATA and its own ACKs at
// random (seeded), ACKs the last in-order block when its window is
// complete, on the first gap or duplicate after progress (again when the
// server resends that window), and after 100 ms of silence. Returns the file; counts what it lost
// and how often it saw a gap.
struct LossyResult {
  std::string data;
  int lost = 0;
  int gaps = 0;
};

LossyResult LossyFetch(uint16_t port, const std::string& name, size_t blksize, size_t window,
                       unsigned seed) {
  RawTftpClient c(port);
  c.SendRequest(
      MakeRequest(Opcode::kRrq, name, "octet",
                  {{"blksize", std::to_string(blksize)}, {"windowsize", std::to_string(window)}}));
  std::mt19937 rng(seed);
  auto lose = [&](unsigned percent) { return rng() % 100 < percent; };
  LossyResult res;
  uint64_t have = 0;  // blocks received in order
  uint64_t window_start = 1;
  // ACKed a gap or duplicate since the last progress, and on which block:
  // the same block again means the server resent its window.
  bool complained = false;
  uint16_t complained_on = 0;
  uint16_t tid = 0;
  auto ack = [&](uint64_t block) {
    window_start = block + 1;
    if (lose(5))
      ++res.lost;
    else
      c.SendTo(tid, MakeAck(static_cast<uint16_t>(block)));
  };
  for (int guard = 0; guard < 100000; ++guard) {
    auto r = c.Receive(100ms);
    if (!r) {
      REQUIRE(tid != 0);
      ack(have);
      continue;
    }
    if (tid == 0) tid = r->port;
    REQUIRE(r->port == tid);
    auto p = ParseReply(*r);
    if (std::holds_alternative<Oack>(p)) {
      if (have == 0) ack(0);
      continue;
    }
    INFO(ErrorText(*r));
    REQUIRE(std::holds_alternative<Data>(p));
    auto& d = std::get<Data>(p);
    if (lose(10)) {
      ++res.lost;
      continue;
    }
    auto ahead = static_cast<uint16_t>(d.block - static_cast<uint16_t>(have + 1));
    if (ahead == 0) {
      res.data += d.payload;
      ++have;
      complained = false;
      if (d.payload.size() < blksize) {
        c.SendTo(tid, MakeAck(d.block));  // the final ACK is never lost
        return res;
      }
      if (have == window_start + window - 1) ack(have);
    } else if (!complained || d.block == complained_on) {
      if (ahead < 0x8000) ++res.gaps;
      complained = true;
      complained_on = d.block;
      ack(have);
    }
  }
  FAIL("the lossy transfer did not end");
  return res;
}
}  // namespace

TEST_CASE("downloads in lock-step, with blksize and tsize, and with windows") {
  Fixture f;
  RawTftpClient c(f.port());
  CHECK(c.Fetch("pxelinux.0") == Pattern(40000, 1));
  CHECK(c.Fetch("/boot/vmlinuz", {{"blksize", "1468"}, {"tsize", "0"}}) == Pattern(300000, 2));
  CHECK(c.Fetch("linux", {{"blksize", "1468"}, {"windowsize", "16"}}) == Pattern(300000, 2));
  CHECK(c.Fetch("exact", {{"windowsize", "4"}}) == Pattern(1024, 3));
  CHECK(WaitUntil([&] { return f.server->stats().completed == 4; }));
  CHECK(f.server->stats().bytes == 40000 + 300000 * 2 + 1024);
}

TEST_CASE("the OACK carries tsize and the values the server will use") {
  Fixture f;
  RawTftpClient c(f.port());
  c.SendRequest(MakeRequest(Opcode::kRrq, "boot/vmlinuz", "octet",
                            {{"tsize", "0"},
                             {"blksize", "100000"},
                             {"windowsize", "999"},
                             {"timeout", "0"},
                             {"frobnicate", "1"}}));
  auto r = c.Receive();
  REQUIRE(r);
  auto o = std::get<Oack>(ParseReply(*r)).options;
  CHECK(o == std::vector<Option>{{"tsize", "300000"}, {"blksize", "65464"}, {"windowsize", "4"}});
}

TEST_CASE("netascii turns LF into CR LF and a bare CR into CR NUL") {
  Fixture f;
  RawTftpClient c(f.port());
  CHECK(c.Fetch("text.cfg", {}, "netascii") == std::string("line one\r\nline two\r\0\r\n", 22));
}

TEST_CASE("write requests are refused with an access violation") {
  Fixture f;
  RawTftpClient c(f.port());
  c.SendRequest(MakeRequest(Opcode::kWrq, "upload", "octet"));
  auto r = c.Receive();
  REQUIRE(r);
  CHECK(ErrorText(*r) == "ERROR 2: write requests are refused: this TFTP server is read-only");
  CHECK(access(f.dir.Sub("root/upload").c_str(), F_OK) != 0);
}

TEST_CASE("paths that leave the root, symlinks out of it and missing files get errors") {
  Fixture f;
  RawTftpClient c(f.port());
  CHECK(c.Fetch("../secret") == "ERROR 2: \"../secret\" leaves the TFTP root");
  CHECK(c.Fetch("boot/../../secret") == "ERROR 2: \"boot/../../secret\" leaves the TFTP root");
  CHECK(c.Fetch("escape").find("ERROR 2: escape: access denied") == 0);
  CHECK(c.Fetch("/etc/passwd") == "ERROR 1: etc/passwd: no such file");
  CHECK(c.Fetch("missing.cfg") == "ERROR 1: missing.cfg: no such file");
  CHECK(c.Fetch("boot") == "ERROR 2: boot: not a regular file");
  CHECK(c.Fetch("/") == "ERROR 0: \"/\" names no file");
  // An absolute name means the root, as tftpd-hpa --secure does.
  CHECK(c.Fetch("/pxelinux.0") == Pattern(40000, 1));
}

TEST_CASE("unknown modes and malformed requests get errors, other junk gets silence") {
  Fixture f;
  RawTftpClient c(f.port());
  c.SendRequest(MakeRequest(Opcode::kRrq, "pxelinux.0", "mail"));
  CHECK(ErrorText(*c.Receive()) ==
        "ERROR 4: transfer mode \"mail\" is not supported (use octet or netascii)");
  c.SendRequest(MakeRequest(Opcode::kRrq, "pxelinux.0", "binary-ish"));
  CHECK(ErrorText(*c.Receive()).find("ERROR 4: transfer mode \"binary-ish\"") == 0);
  c.SendRequest(std::string("\0\x01pxelinux.0\0", 13));
  CHECK(ErrorText(*c.Receive()) ==
        "ERROR 4: malformed request: transfer mode is missing or not NUL-terminated");
  std::string huge =
      std::string("\0\x01", 2) + std::string(60000, 'a') + std::string("\0octet\0", 7);
  c.SendRequest(huge);
  CHECK(ErrorText(*c.Receive()) ==
        "ERROR 4: malformed request: file name is not NUL-terminated within 1024 bytes");

  // Silence for: a 1-byte datagram, an empty one, unknown opcodes, stray
  // DATA, ACK, ERROR and OACK on the request port.
  for (std::string junk : {std::string("\x01", 1), std::string(), std::string("\0\x09zz", 4),
                           std::string("\xff\xff", 2), MakeData(1, "x"), MakeAck(1),
                           MakeError(ErrorCode::kNotDefined, "x"), MakeOack({})})
    c.SendRequest(junk);
  c.SendRequest(MakeRequest(Opcode::kRrq, "missing", "octet"));
  auto r = c.Receive();
  REQUIRE(r);
  CHECK(ErrorText(*r) == "ERROR 1: missing: no such file");
}

TEST_CASE("duplicate ACKs do not make the server send twice") {
  Fixture f;
  RawTftpClient c(f.port());
  c.SendRequest(MakeRequest(Opcode::kRrq, "pxelinux.0", "octet"));
  auto d1 = c.Receive();
  REQUIRE(d1);
  CHECK(std::get<Data>(ParseReply(*d1)).block == 1);
  for (int i = 0; i < 4; ++i) c.SendTo(d1->port, MakeAck(1));
  c.SendTo(d1->port, MakeAck(0));  // older than anything: ignored too
  c.SendTo(d1->port, "garbage");   // junk on the transfer port: ignored
  c.SendTo(d1->port, MakeAck(2));
  auto a = c.Receive();
  auto b = c.Receive();
  REQUIRE(a);
  REQUIRE(b);
  CHECK(std::get<Data>(ParseReply(*a)).block == 2);
  CHECK(std::get<Data>(ParseReply(*b)).block == 3);
  c.SendTo(d1->port, MakeError(ErrorCode::kNotDefined, "bye"));
  CHECK(WaitUntil([&] { return f.server->stats().failed == 1; }));
}

TEST_CASE("a repeated request from the same client port does not start a second transfer") {
  Fixture f;
  RawTftpClient c(f.port());
  auto rrq = MakeRequest(Opcode::kRrq, "pxelinux.0", "octet");
  c.SendRequest(rrq);
  c.SendRequest(rrq);
  c.SendRequest(MakeRequest(Opcode::kRrq, "missing", "octet"));  // a marker
  auto first = c.Receive();
  auto second = c.Receive();
  REQUIRE(first);
  REQUIRE(second);
  CHECK(std::get<Data>(ParseReply(*first)).block == 1);
  CHECK(ErrorText(*second) == "ERROR 1: missing: no such file");
  CHECK(f.server->stats().active == 1);
}

TEST_CASE("a client that vanishes mid-transfer is dropped and others keep working") {
  Fixture f(Quick());
  {
    RawTftpClient gone(f.port());
    gone.SendRequest(MakeRequest(Opcode::kRrq, "boot/vmlinuz", "octet"));
    REQUIRE(gone.Receive());
  }  // socket closed without a word
  RawTftpClient silent(f.port());
  silent.SendRequest(MakeRequest(Opcode::kRrq, "boot/vmlinuz", "octet"));
  REQUIRE(silent.Receive());  // ...and then never ACKs
  CHECK(WaitUntil([&] { return f.server->stats().failed == 2; }));
  CHECK(f.server->stats().active == 0);
  RawTftpClient ok(f.port());
  CHECK(ok.Fetch("pxelinux.0") == Pattern(40000, 1));
}

TEST_CASE("windows on a lossy path: gaps and timeouts resend, the file arrives whole") {
  TftpServerOptions o;
  o.limits.default_timeout = 20ms;
  o.limits.max_timeout = 40ms;
  o.limits.max_retries = 20;
  Fixture f(o);
  struct Case {
    size_t blksize, window;
  };
  // 64 blocks of 1468 bytes do not fit one segmented send: two per window.
  for (auto [blksize, window] : {Case{512, 8}, Case{1468, 32}, Case{1468, 64}}) {
    INFO("blksize " << blksize << " windowsize " << window);
    auto r = LossyFetch(f.port(), "boot/vmlinuz", blksize, window, static_cast<unsigned>(window));
    CHECK(r.data == Pattern(300000, 2));
    CHECK(r.lost > 0);
    CHECK(r.gaps > 0);
  }
  CHECK(WaitUntil([&] { return f.server->stats().completed == 3; }));
  CHECK(f.server->stats().failed == 0);
  CHECK(f.server->stats().bytes == 3 * 300000);
}

TEST_CASE("block numbers roll over on a real transfer") {
  Fixture f;
  WriteTestFile(f.dir.Sub("root/big"), Pattern(8 * 65600 + 3, 9));
  RawTftpClient c(f.port());
  CHECK(c.Fetch("big", {{"blksize", "8"}, {"windowsize", "64"}}) == Pattern(8 * 65600 + 3, 9));
}

TEST_CASE("fuzz: random datagrams at both ports never stop the server") {
  Fixture f(Quick());
  std::mt19937 rng(1234);
  RawTftpClient c(f.port());
  c.SendRequest(MakeRequest(Opcode::kRrq, "boot/vmlinuz", "octet", {{"blksize", "1468"}}));
  auto first = c.Receive();
  REQUIRE(first);
  uint16_t tid = first->port;
  std::vector<std::string> seeds = {
      MakeRequest(Opcode::kRrq, "pxelinux.0", "octet", {{"blksize", "9"}}), MakeAck(1),
      MakeData(1, "abc"), MakeOack({{"tsize", "1"}}), MakeError(ErrorCode::kUnknownTid, "x")};
  for (int i = 0; i < 3000; ++i) {
    std::string d = seeds[rng() % seeds.size()];
    for (int e = 0; e < 3; ++e) {
      if (!d.empty() && rng() % 2) d[rng() % d.size()] = static_cast<char>(rng());
      if (rng() % 4 == 0) d.resize(rng() % (d.size() + 1));
    }
    RawTftpClient junk(f.port());
    junk.SendTo(rng() % 3 ? f.port() : tid, d);
  }
  RawTftpClient ok(f.port());
  CHECK(ok.Fetch("pxelinux.0", {{"blksize", "512"}}) == Pattern(40000, 1));
  // Whatever the junk started times out; nothing is left behind.
  CHECK(WaitUntil([&] { return f.server->stats().active == 0; }));
}

TEST_CASE("stopping with transfers in flight is clean") {
  Fixture f;
  RawTftpClient c(f.port());
  c.SendRequest(MakeRequest(Opcode::kRrq, "boot/vmlinuz", "octet"));
  REQUIRE(c.Receive());
  f.server->Stop();
  f.server->Stop();
  CHECK(f.server->stats().active == 0);
}
