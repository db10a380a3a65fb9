// The transfer state machine, driven packet by packet with a fake clock:
// lock-step, windows, the final block, rollover, duplicate ACKs (no
// sorcerer's apprentice), retransmission with backoff, giving up.

#include <catch2/catch.hpp>

#include "pxe/tftp_transfer.h"

using namespace kiln;
using namespace kiln::pxe;
using namespace kiln::pxe::tftp;
using namespace std::chrono_literals;
using Clock = Transfer::Clock;

namespace {

struct RecordingSink : PacketSink {
  std::vector<std::string> sent;
  void Send(std::span<const OutPacket> packets) override {
    for (const auto& p : packets) sent.push_back(std::string(p.head) + std::string(p.body));
  }
  // The DATA block numbers sent since the last call.
  std::vector<int> TakeBlocks() {
    std::vector<int> blocks;
    for (const auto& s : sent) {
      auto p = Parse(s);
      REQUIRE(p.ok());
      if (auto* d = std::get_if<Data>(&*p)) blocks.push_back(d->block);
      else blocks.push_back(-static_cast<int>(s[1]));  // OACK -6, ERROR -5
    }
    sent.clear();
    return blocks;
  }
};

std::string Pattern(size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + i % 26);
  return s;
}

std::span<const uint8_t> Bytes(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

struct Harness {
  RecordingSink sink;
  std::unique_ptr<Transfer> t;
  Clock::time_point now = Clock::time_point{} + 1h;
  Limits limits;

  Harness(std::string data, std::vector<Option> options) {
    auto neg = Negotiate(options, limits, data.size());
    t = std::make_unique<Transfer>(std::make_unique<MemorySource>(std::move(data)), neg, limits,
                                   &sink);
    t->Start(now);
  }
  void Ack(int block) { t->OnDatagram(Bytes(MakeAck(static_cast<uint16_t>(block))), now); }
  void Tick(std::chrono::milliseconds d) {
    now += d;
    t->OnTimer(now);
  }
};

}  // namespace

TEST_CASE("lock-step without options: DATA 1 at once, one block per ACK, short final block") {
  Harness h(Pattern(1200), {});
  CHECK(h.sink.TakeBlocks() == std::vector<int>{1});
  h.Ack(1);
  CHECK(h.sink.TakeBlocks() == std::vector<int>{2});
  h.Ack(2);
  auto last = h.sink.sent.back();
  CHECK(last.size() == 4 + 1200 - 1024);
  CHECK(h.sink.TakeBlocks() == std::vector<int>{3});
  CHECK(!h.t->done());
  h.Ack(3);
  CHECK(h.t->outcome() == Transfer::Outcome::kComplete);
  CHECK(h.t->bytes_acked() == 1200);
}

TEST_CASE("a file that fills its last block ends with an empty block") {
  Harness h(Pattern(1024), {});
  h.Ack(1);
  h.Ack(2);
  auto blocks = h.sink.TakeBlocks();
  CHECK(blocks == std::vector<int>{1, 2, 3});
  h.Ack(3);
  CHECK(h.t->outcome() == Transfer::Outcome::kComplete);
  CHECK(h.t->bytes_acked() == 1024);

  Harness empty("", {});
  CHECK(empty.sink.sent.size() == 1);
  CHECK(empty.sink.sent[0].size() == 4);
  empty.Ack(1);
  CHECK(empty.t->outcome() == Transfer::Outcome::kComplete);
}

TEST_CASE("options: OACK first, DATA after ACK 0, blocks of the negotiated size") {
  Harness h(Pattern(3000), {{"blksize", "1000"}, {"tsize", "0"}});
  CHECK(h.sink.TakeBlocks() == std::vector<int>{-6});
  h.Ack(1);  // not ACK 0: ignored
  CHECK(h.sink.sent.empty());
  h.Ack(0);
  REQUIRE(h.sink.sent.size() == 1);
  CHECK(h.sink.sent[0].size() == 1004);
  h.sink.TakeBlocks();
  h.Ack(1);
  h.Ack(2);
  h.Ack(3);
  CHECK(h.sink.TakeBlocks() == std::vector<int>{2, 3, 4});
  h.Ack(4);
  CHECK(h.t->outcome() == Transfer::Outcome::kComplete);
}

TEST_CASE("duplicate ACKs never trigger a resend (no sorcerer's apprentice)") {
  Harness h(Pattern(512 * 10), {});
  h.sink.TakeBlocks();
  h.Ack(1);
  CHECK(h.sink.TakeBlocks() == std::vector<int>{2});
  for (int i = 0; i < 5; ++i) h.Ack(1);  // delayed duplicates
  CHECK(h.sink.sent.empty());
  h.Ack(2);
  CHECK(h.sink.TakeBlocks() == std::vector<int>{3});
  h.Ack(2);
  h.Ack(7);  // never sent: bogus
  h.Ack(60000);
  CHECK(h.sink.sent.empty());
  CHECK(h.t->retransmits() == 0);
}

TEST_CASE("windows: a full window per ACK, a partial ACK resends from the gap") {
  Harness h(Pattern(512 * 10 + 5), {{"windowsize", "4"}});
  CHECK(h.sink.TakeBlocks() == std::vector<int>{-6});
  h.Ack(0);
  CHECK(h.sink.TakeBlocks() == std::vector<int>{1, 2, 3, 4});
  h.Ack(4);
  CHECK(h.sink.TakeBlocks() == std::vector<int>{5, 6, 7, 8});
  h.Ack(6);  // 7 was lost
  CHECK(h.sink.TakeBlocks() == std::vector<int>{7, 8, 9, 10});
  h.Ack(6);  // duplicate of the gap report: ignored
  CHECK(h.sink.sent.empty());
  h.Ack(10);
  CHECK(h.sink.TakeBlocks() == std::vector<int>{11});
  h.Ack(11);
  CHECK(h.t->outcome() == Transfer::Outcome::kComplete);
  CHECK(h.t->bytes_acked() == 512 * 10 + 5);
}

TEST_CASE("block numbers roll over to 0 past 65535") {
  const size_t bs = 8;
  const size_t blocks = 65536 + 10;
  Harness h(Pattern(bs * blocks - 3), {{"blksize", "8"}, {"windowsize", "64"}});
  CHECK(h.sink.TakeBlocks() == std::vector<int>{-6});
  h.Ack(0);
  uint64_t acked = 0;
  int guard = 0;
  while (!h.t->done() && guard++ < 5000) {
    auto got = h.sink.TakeBlocks();
    REQUIRE(!got.empty());
    acked += got.size();
    h.Ack(got.back());
  }
  CHECK(h.t->outcome() == Transfer::Outcome::kComplete);
  CHECK(acked == blocks);
  CHECK(h.t->bytes_acked() == bs * blocks - 3);
}

TEST_CASE("retransmission on timeout, with doubling backoff, then giving up") {
  Harness h(Pattern(2000), {});
  h.sink.TakeBlocks();
  h.Tick(500ms);  // early: nothing
  CHECK(h.sink.sent.empty());
  h.Tick(500ms);  // 1 s: first retransmission
  CHECK(h.sink.TakeBlocks() == std::vector<int>{1});
  h.Tick(1500ms);  // backoff: the next one comes 2 s later
  CHECK(h.sink.sent.empty());
  h.Tick(500ms);
  CHECK(h.sink.TakeBlocks() == std::vector<int>{1});
  // Progress resets the timeout.
  h.Ack(1);
  h.sink.TakeBlocks();
  h.Tick(1000ms);
  CHECK(h.sink.TakeBlocks() == std::vector<int>{2});
  for (int i = 0; i < 10 && !h.t->done(); ++i) h.Tick(10s);
  CHECK(h.t->outcome() == Transfer::Outcome::kTimedOut);
  CHECK(h.t->detail() == "timed out after 5 retransmissions");
  // The last thing sent is an ERROR telling the client.
  CHECK(h.sink.TakeBlocks().back() == -5);
}

TEST_CASE("a client ERROR ends the transfer, junk is ignored") {
  Harness h(Pattern(2000), {{"blksize", "1024"}});
  h.t->OnDatagram(Bytes(std::string("\0\x04", 2)), h.now);  // truncated ACK
  h.t->OnDatagram(Bytes(MakeData(1, "x")), h.now);
  CHECK(!h.t->done());
  h.t->OnDatagram(Bytes(MakeError(ErrorCode::kOptionRefused, "no thanks")), h.now);
  CHECK(h.t->outcome() == Transfer::Outcome::kClientError);
  CHECK(h.t->detail() == "client error 8: no thanks");
}
