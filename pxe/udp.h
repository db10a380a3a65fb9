#pragma once
// UDP plumbing for the TFTP server: socket addresses as values, receiving
// with the local destination address (IP_PKTINFO / IPV6_PKTINFO, so a
// server bound to 0.0.0.0 answers from the address the client used), and
// per-transfer sockets.

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <span>
#include <string>

#include "common/file_util.h"
#include "common/status.h"

namespace kiln::pxe {

struct SockAddr {
  sockaddr_storage ss{};
  socklen_t len = 0;

  const sockaddr* get() const { return reinterpret_cast<const sockaddr*>(&ss); }
  sockaddr* get() { return reinterpret_cast<sockaddr*>(&ss); }
  int family() const { return ss.ss_family; }
  // "10.0.0.5" or "fe80::1"; IPv4-mapped IPv6 addresses print as IPv4.
  std::string Ip() const;
  uint16_t Port() const;
  // "10.0.0.5:1234", "[fe80::1]:1234".
  std::string ToString() const;
  // Same address with another port.
  SockAddr WithPort(uint16_t port) const;
};

// The address a socket is bound to.
Result<SockAddr> LocalSockAddr(int fd);

// Turns on delivery of the destination address with each datagram, and
// makes the socket non-blocking.
Status PrepareServerSocket(int fd);

struct Datagram {
  size_t size = 0;
  bool truncated = false;
  SockAddr from;
  SockAddr to;  // the local address it was sent to (port from the socket)
  bool has_to = false;
};

// One recvmsg. Returns false on EAGAIN (nothing more to read) and on other
// errors (logged by the caller if it cares through errno).
bool ReceiveDatagram(int fd, std::span<uint8_t> buf, Datagram* out);

// A non-blocking UDP socket bound to local (port 0: a fresh TID) and
// connected to peer.
Result<UniqueFd> OpenTransferSocket(const SockAddr& local, const SockAddr& peer);

}  // namespace kiln::pxe
