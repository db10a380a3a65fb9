// WindowSender on real loopback sockets: whatever path it takes (one
// segmented sendmsg, sendmmsg after the kernel refused GSO, single
// sends), the receiver gets exactly the datagrams it was given, in order,
// with their boundaries.

#include "pxe/window_sender.h"

#include <arpa/inet.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <catch2/catch.hpp>
#include <random>
#include <string>
#include <vector>

#include "common/file_util.h"
#include "pxe/tftp_packet.h"

using namespace kiln;
using namespace kiln::pxe;

namespace {

UniqueFd Udp() {
  UniqueFd fd(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  REQUIRE(fd.valid());
  // Room for a whole 100-datagram window before the test reads it.
  int rcvbuf = 1 << 20;
  REQUIRE(::setsockopt(fd.get(), SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf) == 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  return fd;
}

void Connect(int fd, int to) {
  sockaddr_in a{};
  socklen_t len = sizeof a;
  REQUIRE(::getsockname(to, reinterpret_cast<sockaddr*>(&a), &len) == 0);
  REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&a), len) == 0);
}

// A window as the transfer builds it: DATA headers and one payload buffer.
struct Window {
  std::vector<std::array<char, 4>> heads;
  std::string payload;
  std::vector<tftp::OutPacket> packets;

  // count blocks of blksize, the last one last_len long.
  Window(size_t count, size_t blksize, size_t last_len, unsigned seed = 1) : heads(count) {
    std::mt19937 rng(seed);
    payload.resize((count - 1) * blksize + last_len);
    for (auto& c : payload) c = static_cast<char>(rng());
    for (size_t i = 0; i < count; ++i) {
      tftp::PutDataHeader(heads[i].data(), static_cast<uint16_t>(i + 1));
      size_t len = i + 1 == count ? last_len : blksize;
      packets.push_back({std::string_view(heads[i].data(), 4),
                         std::string_view(payload.data() + i * blksize, len)});
    }
  }
};

std::vector<std::string> ReceiveAll(int fd, size_t count) {
  std::vector<std::string> got;
  std::string buf(70000, '\0');
  while (got.size() < count) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 5000) <= 0) break;
    ssize_t n = ::recv(fd, buf.data(), buf.size(), 0);
    REQUIRE(n >= 0);
    got.emplace_back(buf.data(), static_cast<size_t>(n));
  }
  return got;
}

void CheckReceived(int fd, std::span<const tftp::OutPacket> sent) {
  auto got = ReceiveAll(fd, sent.size());
  REQUIRE(got.size() == sent.size());
  for (size_t i = 0; i < sent.size(); ++i) {
    INFO("datagram " << i);
    CHECK(got[i] == std::string(sent[i].head) + std::string(sent[i].body));
  }
  pollfd p{fd, POLLIN, 0};
  CHECK(::poll(&p, 1, 0) == 0);  // nothing extra
}

}  // namespace

TEST_CASE("a window goes out as one segmented send, datagram boundaries intact") {
  UniqueFd rx = Udp(), tx = Udp();
  Connect(tx.get(), rx.get());
  WindowSender s(tx.get());

  SECTION("full blocks and a short last one") {
    Window w(8, 1468, 100);
    REQUIRE(s.Send(w.packets));
    CheckReceived(rx.get(), w.packets);
    CHECK(s.gso_sends() == 1);
    CHECK(s.mmsg_sends() == 0);
  }
  SECTION("an empty final block") {
    Window w(5, 512, 0);
    REQUIRE(s.Send(w.packets));
    CheckReceived(rx.get(), w.packets);
    CHECK(s.gso_sends() == 1);
  }
  SECTION("a window larger than one GSO send is split, in order") {
    Window w(100, 1468, 1468);
    REQUIRE(s.Send(w.packets));
    CheckReceived(rx.get(), w.packets);
    CHECK(s.gso_sends() == 3);  // 44 + 44 + 12 datagrams of 1472 bytes
  }
  SECTION("a lone datagram (OACK, lock-step DATA, ERROR) is a plain send") {
    Window w(1, 1468, 700);
    REQUIRE(s.Send(w.packets));
    CheckReceived(rx.get(), w.packets);
    CHECK(s.single_sends() == 1);
    CHECK(s.gso_sends() == 0);
  }
  SECTION("blocks too large to batch go one by one") {
    Window w(3, 40000, 10);
    REQUIRE(s.Send(w.packets));
    CheckReceived(rx.get(), w.packets);
    CHECK(s.single_sends() == 3);
    CHECK(s.gso_sends() == 0);
  }
  CHECK(s.gso());
}

TEST_CASE("where the kernel refuses GSO the window goes out with sendmmsg") {
  UniqueFd rx = Udp(), tx = Udp();
  Connect(tx.get(), rx.get());
  SECTION("refused by the kernel") {
    // Without UDP checksums the kernel refuses to segment (EINVAL).
    int one = 1;
    REQUIRE(::setsockopt(tx.get(), SOL_SOCKET, SO_NO_CHECK, &one, sizeof one) == 0);
    WindowSender s(tx.get());
    Window w(8, 1468, 1468);
    REQUIRE(s.Send(w.packets));
    CheckReceived(rx.get(), w.packets);
    CHECK_FALSE(s.gso());
    CHECK(s.gso_sends() == 0);
    CHECK(s.mmsg_sends() == 1);
    Window w2(70, 512, 3, 2);  // and stays on sendmmsg, 64 at a time
    REQUIRE(s.Send(w2.packets));
    CheckReceived(rx.get(), w2.packets);
    CHECK(s.mmsg_sends() == 3);
  }
  SECTION("turned off") {
    WindowSender s(tx.get(), /*gso=*/false);
    Window w(8, 1468, 1);
    REQUIRE(s.Send(w.packets));
    CheckReceived(rx.get(), w.packets);
    CHECK(s.mmsg_sends() == 1);
  }
}

TEST_CASE("a closed peer port is reported, on either path") {
  for (bool gso : {true, false}) {
    INFO("gso " << gso);
    UniqueFd rx = Udp(), tx = Udp();
    Connect(tx.get(), rx.get());
    rx.Reset();  // the port answers ICMP port unreachable from now on
    WindowSender s(tx.get(), gso);
    Window w(4, 512, 512);
    // The first send's ICMP error is reported by the next one.
    bool gone = false;
    for (int i = 0; i < 3 && !gone; ++i) gone = !s.Send(w.packets);
    CHECK(gone);
  }
}
