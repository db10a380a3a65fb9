#include "pxe/tftp_transfer.h"

#include <algorithm>

namespace kiln::pxe::tftp {

std::string_view OutcomeName(Transfer::Outcome o) {
  switch (o) {
    case Transfer::Outcome::kRunning: return "running";
    case Transfer::Outcome::kComplete: return "complete";
    case Transfer::Outcome::kClientError: return "client_error";
    case Transfer::Outcome::kTimedOut: return "timed_out";
    case Transfer::Outcome::kReadError: return "read_error";
  }
  return "unknown";
}

Transfer::Transfer(std::unique_ptr<BlockSource> source, Negotiated negotiated,
                   const Limits& limits, PacketSink* sink)
    : source_(std::move(source)),
      neg_(std::move(negotiated)),
      limits_(limits),
      sink_(sink),
      rto_(neg_.timeout) {}

void Transfer::Start(Clock::time_point now) {
  if (!neg_.oack.empty()) {
    oack_ = MakeOack(neg_.oack);
    window_.assign(1, OutPacket{oack_, {}});
    state_ = State::kWaitOackAck;
    sink_->Send(window_);
    ++packets_sent_;
    deadline_ = now + rto_;
    return;
  }
  state_ = State::kSending;
  SendWindow(now);
}

void Transfer::SendWindow(Clock::time_point now) {
  const uint64_t bs = neg_.blksize;
  uint64_t count = neg_.windowsize;
  if (last_block_ != 0) count = std::min<uint64_t>(count, last_block_ - base_ + 1);
  payload_.resize(count * bs);
  headers_.resize(count);
  window_.clear();
  // One read for the whole window; a short read means the file ends in it.
  auto got = source_->ReadAt((base_ - 1) * bs, payload_.data(), count * bs);
  if (!got.ok()) {
    Fail(Outcome::kReadError, ErrorCode::kNotDefined, got.status().message());
    return;
  }
  uint64_t n = *got;
  for (uint64_t i = 0; i < count; ++i) {
    uint64_t block = base_ + i;
    uint64_t off = i * bs;
    uint64_t len = n > off ? std::min(bs, n - off) : 0;
    PutDataHeader(headers_[i].data(), static_cast<uint16_t>(block & 0xffff));
    window_.push_back({std::string_view(headers_[i].data(), 4),
                       std::string_view(payload_.data() + off, len)});
    if (len < bs) {
      last_block_ = block;
      last_block_size_ = len;
      break;
    }
  }
  next_ = base_ + window_.size();
  sink_->Send(window_);
  packets_sent_ += window_.size();
  deadline_ = now + rto_;
}

void Transfer::OnDatagram(std::span<const uint8_t> datagram, Clock::time_point now) {
  if (done()) return;
  auto packet = Parse(datagram);
  if (!packet.ok()) return;  // junk: silence
  if (auto* err = std::get_if<Error>(&*packet)) {
    Finish(Outcome::kClientError,
           "client error " + std::to_string(err->code) + ": " + err->message);
    return;
  }
  auto* ack = std::get_if<Ack>(&*packet);
  if (!ack) return;
  if (state_ == State::kWaitOackAck) {
    if (ack->block != 0) return;
    state_ = State::kSending;
    retries_ = 0;
    rto_ = neg_.timeout;
    SendWindow(now);
    return;
  }
  if (state_ != State::kSending) return;
  // The 64-bit block this 16-bit ACK names, counting from the last
  // acknowledged block; anything beyond what was sent is stale or bogus.
  uint64_t acked = base_ - 1;
  uint64_t k = acked + static_cast<uint16_t>(ack->block - static_cast<uint16_t>(acked & 0xffff));
  if (k == acked || k >= next_) return;  // duplicate or not ours: never resend on it
  bytes_acked_ += (k - acked) * neg_.blksize;
  base_ = k + 1;
  retries_ = 0;
  rto_ = neg_.timeout;
  if (last_block_ != 0 && k == last_block_) {
    bytes_acked_ -= neg_.blksize - last_block_size_;
    Finish(Outcome::kComplete, "");
    return;
  }
  SendWindow(now);
}

void Transfer::OnTimer(Clock::time_point now) {
  if (done() || now < deadline_) return;
  if (retries_ >= limits_.max_retries) {
    Fail(Outcome::kTimedOut, ErrorCode::kNotDefined,
         "timed out after " + std::to_string(retries_) + " retransmissions");
    return;
  }
  ++retries_;
  auto cap = std::max(limits_.max_timeout, neg_.timeout);
  rto_ = std::min(rto_ * 2, cap);
  Resend(now);
}

void Transfer::Resend(Clock::time_point now) {
  sink_->Send(window_);
  packets_sent_ += window_.size();
  retransmits_ += window_.size();
  deadline_ = now + rto_;
}

void Transfer::Finish(Outcome outcome, std::string detail) {
  outcome_ = outcome;
  detail_ = std::move(detail);
  state_ = State::kIdle;
  // Release the window buffer at once: finished transfers may linger in
  // the server's tables until the loop reaps them.
  std::vector<char>().swap(payload_);
  window_.clear();
}

void Transfer::Fail(Outcome outcome, ErrorCode code, std::string detail) {
  std::string err = MakeError(code, detail);
  OutPacket p{err, {}};
  sink_->Send(std::span(&p, 1));
  Finish(outcome, std::move(detail));
}

}  // namespace kiln::pxe::tftp
