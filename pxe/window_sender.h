#pragma once
// Puts a TFTP transfer's datagrams (a window of DATA packets, an OACK, an
// ERROR) on its connected UDP socket with as little work per datagram as
// the kernel allows.
//
// A window is a run of equal-sized datagrams (blksize + 4 bytes each) that
// may end with one shorter datagram: exactly the shape UDP generic
// segmentation offload takes (UDP_SEGMENT, Linux 4.18). Such a run goes
// out as one sendmsg(2) whose payload the kernel cuts into datagrams of
// the given size: one trip through the socket, IP and routing layers for
// the whole window instead of one per block, and on NICs with UDP
// segmentation offload no per-datagram work on the CPU at all. The
// receiver sees ordinary datagrams, byte for byte what sendmmsg would
// have sent; it needs no support of its own.
//
// The kernel refuses GSO where it cannot apply it (a datagram larger than
// the path MTU, IPsec, an old kernel): then this sender falls back to one
// sendmmsg(2) per batch of up to 64, for this and every later send on the
// socket.
//
// Errors are not reported except a closed peer (ECONNREFUSED: an ICMP port
// unreachable came back): a lost datagram is what the transfer's
// retransmission timer is for.
//
// Thread safety: none; one sender belongs to one transfer on one thread.
// It does not own the socket.

#include <cstdint>
#include <span>

#include "pxe/tftp_transfer.h"

namespace kiln::pxe {

class WindowSender {
 public:
  // gso = false: never try UDP_SEGMENT (tests of the fallback path).
  explicit WindowSender(int fd, bool gso = true) : fd_(fd), gso_(gso) {}

  // Sends the datagrams in order. Returns false when the peer's port is
  // closed (ECONNREFUSED).
  bool Send(std::span<const tftp::OutPacket> packets);

  // Whether GSO is still in use (false after the kernel refused it).
  bool gso() const { return gso_; }
  // Sends by path, for tests and profiling: segmented sendmsg calls,
  // sendmmsg calls, single sends.
  uint64_t gso_sends() const { return gso_sends_; }
  uint64_t mmsg_sends() const { return mmsg_sends_; }
  uint64_t single_sends() const { return single_sends_; }

 private:
  // Each returns how many datagrams of packets went out, or -1 for a
  // closed peer; 0 means "dropped" (the caller moves on).
  long SendSegmented(std::span<const tftp::OutPacket> packets);
  long SendMany(std::span<const tftp::OutPacket> packets);

  int fd_;
  bool gso_;
  uint64_t gso_sends_ = 0, mmsg_sends_ = 0, single_sends_ = 0;
};

}  // namespace kiln::pxe
