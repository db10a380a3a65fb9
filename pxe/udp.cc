#include "pxe/udp.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

namespace kiln::pxe {

std::string SockAddr::Ip() const {
  char buf[INET6_ADDRSTRLEN] = {};
  if (ss.ss_family == AF_INET) {
    auto* a = reinterpret_cast<const sockaddr_in*>(&ss);
    ::inet_ntop(AF_INET, &a->sin_addr, buf, sizeof buf);
  } else if (ss.ss_family == AF_INET6) {
    auto* a = reinterpret_cast<const sockaddr_in6*>(&ss);
    if (IN6_IS_ADDR_V4MAPPED(&a->sin6_addr))
      ::inet_ntop(AF_INET, &a->sin6_addr.s6_addr[12], buf, sizeof buf);
    else
      ::inet_ntop(AF_INET6, &a->sin6_addr, buf, sizeof buf);
  } else {
    return "?";
  }
  return buf;
}

uint16_t SockAddr::Port() const {
  if (ss.ss_family == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in*>(&ss)->sin_port);
  if (ss.ss_family == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6*>(&ss)->sin6_port);
  return 0;
}

std::string SockAddr::ToString() const {
  std::string ip = Ip();
  if (ip.find(':') != std::string::npos) return fmt::format("[{}]:{}", ip, Port());
  return fmt::format("{}:{}", ip, Port());
}

SockAddr SockAddr::WithPort(uint16_t port) const {
  SockAddr a = *this;
  if (a.ss.ss_family == AF_INET) reinterpret_cast<sockaddr_in*>(&a.ss)->sin_port = htons(port);
  if (a.ss.ss_family == AF_INET6) reinterpret_cast<sockaddr_in6*>(&a.ss)->sin6_port = htons(port);
  return a;
}

Result<SockAddr> LocalSockAddr(int fd) {
  SockAddr a;
  a.len = sizeof a.ss;
  if (::getsockname(fd, a.get(), &a.len) != 0) return ErrnoError("getsockname", errno);
  return a;
}

Status PrepareServerSocket(int fd) {
  KILN_ASSIGN_OR_RETURN(SockAddr local, LocalSockAddr(fd));
  int one = 1;
  // IPv4 packets on a dual-stack IPv6 socket carry IP_PKTINFO too.
  if (::setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof one) != 0 && local.family() == AF_INET)
    return ErrnoError("setsockopt IP_PKTINFO", errno);
  if (local.family() == AF_INET6 &&
      ::setsockopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, sizeof one) != 0)
    return ErrnoError("setsockopt IPV6_RECVPKTINFO", errno);
  int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0)
    return ErrnoError("fcntl O_NONBLOCK", errno);
  return Status::Ok();
}

bool ReceiveDatagram(int fd, std::span<uint8_t> buf, Datagram* out) {
  iovec iov{buf.data(), buf.size()};
  alignas(cmsghdr) char control[256];
  msghdr msg{};
  msg.msg_name = &out->from.ss;
  msg.msg_namelen = sizeof out->from.ss;
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  ssize_t n;
  do {
    n = ::recvmsg(fd, &msg, MSG_TRUNC);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return false;
  out->from.len = msg.msg_namelen;
  out->truncated = static_cast<size_t>(n) > buf.size() || (msg.msg_flags & MSG_TRUNC);
  out->size = std::min(static_cast<size_t>(n), buf.size());
  out->has_to = false;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
      in_pktinfo pi;
      std::memcpy(&pi, CMSG_DATA(c), sizeof pi);
      if (out->from.family() == AF_INET6) {
        // Dual-stack socket: answer from the IPv4-mapped local address.
        sockaddr_in6 a{};
        a.sin6_family = AF_INET6;
        a.sin6_addr.s6_addr[10] = 0xff;
        a.sin6_addr.s6_addr[11] = 0xff;
        std::memcpy(&a.sin6_addr.s6_addr[12], &pi.ipi_spec_dst, 4);
        std::memcpy(&out->to.ss, &a, sizeof a);
        out->to.len = sizeof a;
      } else {
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr = pi.ipi_spec_dst;
        std::memcpy(&out->to.ss, &a, sizeof a);
        out->to.len = sizeof a;
      }
      out->has_to = true;
    } else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO) {
      in6_pktinfo pi;
      std::memcpy(&pi, CMSG_DATA(c), sizeof pi);
      sockaddr_in6 a{};
      a.sin6_family = AF_INET6;
      a.sin6_addr = pi.ipi6_addr;
      if (IN6_IS_ADDR_LINKLOCAL(&pi.ipi6_addr)) a.sin6_scope_id = pi.ipi6_ifindex;
      std::memcpy(&out->to.ss, &a, sizeof a);
      out->to.len = sizeof a;
      out->has_to = true;
    }
  }
  return true;
}

Result<UniqueFd> OpenTransferSocket(const SockAddr& local, const SockAddr& peer) {
  UniqueFd fd(::socket(local.family(), SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return ErrnoError("socket", errno);
  if (local.family() == AF_INET6) {
    int zero = 0;
    ::setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
  }
  SockAddr l = local.WithPort(0);
  if (::bind(fd.get(), l.get(), l.len) != 0)
    return ErrnoError("bind transfer socket to " + l.Ip(), errno);
  if (::connect(fd.get(), peer.get(), peer.len) != 0)
    return ErrnoError("connect transfer socket to " + peer.ToString(), errno);
  return fd;
}

}  // namespace kiln::pxe
