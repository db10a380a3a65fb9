#include "pxe/window_sender.h"

#include <netinet/in.h>
#include <netinet/udp.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace kiln::pxe {

namespace {

// Linux caps one GSO send at 64 segments (UDP_MAX_SEGMENTS before 6.x)
// and at what fits in one UDP datagram's length field; stay under both.
constexpr size_t kMaxSegments = 64;
constexpr size_t kMaxGsoBytes = 65000;

// Results of one send below a count of datagrams.
constexpr long kPeerGone = -1;
constexpr long kGsoRefused = -2;

size_t SizeOf(const tftp::OutPacket& p) {
  return p.head.size() + p.body.size();
}

void Fill(const tftp::OutPacket& p, iovec* iov, size_t* n) {
  iov[(*n)++] = {const_cast<char*>(p.head.data()), p.head.size()};
  if (!p.body.empty()) iov[(*n)++] = {const_cast<char*>(p.body.data()), p.body.size()};
}

}  // namespace

bool WindowSender::Send(std::span<const tftp::OutPacket> packets) {
  size_t i = 0;
  while (i < packets.size()) {
    auto rest = packets.subspan(i);
    long n = gso_ ? SendSegmented(rest) : SendMany(rest);
    if (n == kGsoRefused) {
      gso_ = false;
      continue;
    }
    if (n == kPeerGone) return false;
    if (n == 0) return true;  // EAGAIN and the like: the timer covers it
    i += static_cast<size_t>(n);
  }
  return true;
}

long WindowSender::SendSegmented(std::span<const tftp::OutPacket> packets) {
  // The run: datagrams of the first one's size, then at most one shorter.
  const size_t seg = SizeOf(packets[0]);
  const size_t limit = std::min(kMaxSegments, std::max<size_t>(1, kMaxGsoBytes / seg));
  size_t count = 1;
  while (count < packets.size() && count < limit) {
    size_t sz = SizeOf(packets[count]);
    if (sz > seg) break;
    ++count;
    if (sz < seg) break;
  }
  iovec iov[2 * kMaxSegments];
  size_t niov = 0;
  for (size_t j = 0; j < count; ++j) Fill(packets[j], iov, &niov);
  msghdr msg{};
  msg.msg_iov = iov;
  msg.msg_iovlen = niov;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(uint16_t))] = {};
  if (count > 1) {
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = IPPROTO_UDP;
    c->cmsg_type = UDP_SEGMENT;
    c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
    auto size16 = static_cast<uint16_t>(seg);
    std::memcpy(CMSG_DATA(c), &size16, sizeof size16);
  }
  for (;;) {
    if (::sendmsg(fd_, &msg, 0) >= 0) break;
    if (errno == EINTR) continue;
    if (errno == ECONNREFUSED) return kPeerGone;
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS) return 0;
    // EINVAL (datagram above the path MTU), EIO (IPsec), ENOPROTOOPT or
    // EOPNOTSUPP (no GSO here), ...: the plain path may still work.
    if (count > 1) return kGsoRefused;
    return 0;
  }
  if (count > 1)
    ++gso_sends_;
  else
    ++single_sends_;
  return static_cast<long>(count);
}

long WindowSender::SendMany(std::span<const tftp::OutPacket> packets) {
  const size_t count = std::min(kMaxSegments, packets.size());
  mmsghdr msgs[kMaxSegments];
  iovec iovs[kMaxSegments][2];
  for (size_t j = 0; j < count; ++j) {
    size_t niov = 0;
    Fill(packets[j], iovs[j], &niov);
    msgs[j] = {};
    msgs[j].msg_hdr.msg_iov = iovs[j];
    msgs[j].msg_hdr.msg_iovlen = niov;
  }
  for (;;) {
    int sent = ::sendmmsg(fd_, msgs, static_cast<unsigned>(count), 0);
    if (sent >= 0) {
      ++mmsg_sends_;
      return sent;
    }
    if (errno == EINTR) continue;
    if (errno == ECONNREFUSED) return kPeerGone;
    return 0;
  }
}

}  // namespace kiln::pxe
