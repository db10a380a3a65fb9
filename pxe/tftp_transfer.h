#pragma once
// One read transfer's state machine, free of sockets and clocks so that
// tests can drive it packet by packet with a fake time.
//
// The sender side of RFC 1350 with RFC 7440 windows:
//   - With options accepted, the OACK goes first and DATA 1 follows its
//     ACK 0; without, DATA 1 goes at once.
//   - A window is up to `windowsize` DATA packets sent back to back. An ACK
//     for block k inside the window moves the window to k+1 and sends it at
//     once (for k short of the window's end, the client saw a gap).
//   - An ACK that acknowledges nothing new (a duplicate) is ignored. Only
//     the retransmission timer resends, so a delayed duplicate ACK can never
//     double the traffic: no sorcerer's apprentice.
//   - The retransmission timeout starts at the negotiated timeout and
//     doubles after each retransmission (bounded); after max_retries
//     retransmissions without progress the transfer gives up.
//   - Block numbers are 16 bits on the wire and roll over to 0, as
//     tftp-hpa, curl, atftp and PXE firmware expect; internally they are
//     64-bit, so files of any size work.
//   - A client ERROR ends the transfer; malformed or unexpected packets are
//     ignored (silence rather than an error storm).
//
// Thread safety: none; one transfer lives on one thread.

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "pxe/block_source.h"
#include "pxe/tftp_options.h"
#include "pxe/tftp_packet.h"

namespace kiln::pxe::tftp {

// One outgoing datagram in up to two parts (a DATA header and its payload),
// so that a window's payload can be read with a single pread.
struct OutPacket {
  std::string_view head;
  std::string_view body;
};

class PacketSink {
 public:
  virtual ~PacketSink() = default;
  // Sends the packets in order. Failures are not reported: a lost datagram
  // is what the retransmission timer is for.
  virtual void Send(std::span<const OutPacket> packets) = 0;
};

class Transfer {
 public:
  using Clock = std::chrono::steady_clock;
  enum class Outcome { kRunning, kComplete, kClientError, kTimedOut, kReadError };

  // sink must outlive the transfer.
  Transfer(std::unique_ptr<BlockSource> source, Negotiated negotiated, const Limits& limits,
           PacketSink* sink);

  void Start(Clock::time_point now);
  void OnDatagram(std::span<const uint8_t> datagram, Clock::time_point now);
  // Call when now >= deadline(); earlier calls do nothing.
  void OnTimer(Clock::time_point now);

  Clock::time_point deadline() const { return deadline_; }
  bool done() const { return outcome_ != Outcome::kRunning; }
  Outcome outcome() const { return outcome_; }
  // For logs: the client's error text, the read error, "timed out".
  const std::string& detail() const { return detail_; }
  const Negotiated& negotiated() const { return neg_; }

  uint64_t bytes_acked() const { return bytes_acked_; }
  uint64_t packets_sent() const { return packets_sent_; }
  uint64_t retransmits() const { return retransmits_; }

 private:
  void SendWindow(Clock::time_point now);
  void Resend(Clock::time_point now);
  void Finish(Outcome outcome, std::string detail);
  void Fail(Outcome outcome, ErrorCode code, std::string detail);

  std::unique_ptr<BlockSource> source_;
  Negotiated neg_;
  Limits limits_;
  PacketSink* sink_;

  enum class State { kIdle, kWaitOackAck, kSending } state_ = State::kIdle;
  Outcome outcome_ = Outcome::kRunning;
  std::string detail_;

  uint64_t base_ = 1;        // first block not yet acknowledged
  uint64_t next_ = 1;        // one past the last block sent
  uint64_t last_block_ = 0;  // the final (short) block, once read; 0 = unknown
  uint64_t last_block_size_ = 0;

  std::string oack_;
  std::vector<char> payload_;                 // the window's payload, contiguous
  std::vector<std::array<char, 4>> headers_;  // DATA headers of the window
  std::vector<OutPacket> window_;             // what was last sent

  Clock::time_point deadline_{};
  std::chrono::milliseconds rto_;
  uint32_t retries_ = 0;

  uint64_t bytes_acked_ = 0;
  uint64_t packets_sent_ = 0;
  uint64_t retransmits_ = 0;
};

std::string_view OutcomeName(Transfer::Outcome o);

}  // namespace kiln::pxe::tftp
