#include "tests/pxe/raw_tftp_client.h"

#include <arpa/inet.h>
#include <poll.h>
#include <sys/socket.h>

#include <catch2/catch.hpp>

#include "common/strings.h"
#include "pxe/tftp_options.h"

namespace kiln::test {

using namespace pxe::tftp;

RawTftpClient::RawTftpClient(uint16_t server_port)
    : fd_(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)), server_port_(server_port) {
  REQUIRE(fd_.valid());
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(fd_.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
}

uint16_t RawTftpClient::local_port() const {
  sockaddr_in a{};
  socklen_t len = sizeof a;
  ::getsockname(fd_.get(), reinterpret_cast<sockaddr*>(&a), &len);
  return ntohs(a.sin_port);
}

void RawTftpClient::SendTo(uint16_t port, const std::string& bytes) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  REQUIRE(::sendto(fd_.get(), bytes.data(), bytes.size(), 0, reinterpret_cast<sockaddr*>(&a),
                   sizeof a) == static_cast<ssize_t>(bytes.size()));
}

std::optional<Reply> RawTftpClient::Receive(std::chrono::milliseconds timeout) {
  pollfd p{fd_.get(), POLLIN, 0};
  if (::poll(&p, 1, static_cast<int>(timeout.count())) <= 0) return std::nullopt;
  std::string buf(70000, '\0');
  sockaddr_in from{};
  socklen_t len = sizeof from;
  ssize_t n = ::recvfrom(fd_.get(), buf.data(), buf.size(), 0, reinterpret_cast<sockaddr*>(&from),
                         &len);
  if (n < 0) return std::nullopt;
  buf.resize(static_cast<size_t>(n));
  return Reply{std::move(buf), ntohs(from.sin_port)};
}

Packet ParseReply(const Reply& r) {
  auto p = Parse(r.bytes);
  INFO(p.status().ToString());
  REQUIRE(p.ok());
  return *p;
}

std::string ErrorText(const Reply& r) {
  auto p = Parse(r.bytes);
  if (!p.ok()) return "unparsable";
  auto* e = std::get_if<Error>(&*p);
  if (!e) return "not an error";
  return "ERROR " + std::to_string(e->code) + ": " + e->message;
}

std::string RawTftpClient::Fetch(const std::string& name, const std::vector<Option>& options,
                                 const std::string& mode) {
  SendRequest(MakeRequest(Opcode::kRrq, name, mode, options));
  uint64_t blksize = 512, window = 1;
  std::string out;
  uint16_t expect = 1;
  uint16_t tid = 0;
  uint64_t in_window = 0;
  for (;;) {
    auto r = Receive();
    REQUIRE(r);
    if (tid == 0) tid = r->port;
    REQUIRE(r->port == tid);
    auto p = ParseReply(*r);
    if (std::holds_alternative<Error>(p)) return ErrorText(*r);
    if (auto* o = std::get_if<Oack>(&p)) {
      for (const auto& [k, v] : o->options) {
        if (k == "blksize") blksize = *ParseUint(v);
        if (k == "windowsize") window = *ParseUint(v);
      }
      SendTo(tid, MakeAck(0));
      continue;
    }
    auto& d = std::get<Data>(p);
    REQUIRE(d.block == expect);
    out += d.payload;
    ++expect;
    ++in_window;
    bool last = d.payload.size() < blksize;
    if (last || in_window == window) {
      SendTo(tid, MakeAck(d.block));
      in_window = 0;
    }
    if (last) return out;
  }
}

}  // namespace kiln::test
