// The log's record framing and what the reader makes of damage: a torn
// tail (nothing valid after the damage) versus corruption (valid records
// after it). Plus a fuzz of the reader and the transaction decoder.

#include <catch2/catch.hpp>
#include <random>

#include "server/coord/embedded/txn.h"
#include "server/coord/embedded/wal_format.h"
#include "server/coord/embedded/wal_reader.h"
#include "server/coord/embedded/wal_writer.h"

using namespace kiln;
using namespace kiln::coord;
using namespace kiln::coord::embedded;
using Outcome = wal::RecordReader::Outcome;

namespace {

std::string Records(int n, std::vector<uint64_t>* offsets = nullptr) {
  std::string out;
  for (int i = 0; i < n; ++i) {
    if (offsets) offsets->push_back(out.size());
    wal::AppendRecord(&out, wal::kTxn, "payload-" + std::to_string(i) + std::string(i * 7, 'x'));
  }
  return out;
}

// Reads everything; returns the outcome that ended the read.
Outcome ReadAll(std::string_view in, int* records, uint64_t* good_end, std::string* why) {
  wal::RecordReader r(in);
  wal::Record rec;
  *records = 0;
  for (;;) {
    Outcome o = r.Next(&rec, why);
    if (o != Outcome::kRecord) {
      *good_end = r.good_end();
      return o;
    }
    ++*records;
  }
}

Txn SampleTxn() {
  Txn t;
  t.zxid = 42;
  t.time_ms = 1700000000000;
  t.ops.push_back(
      TxnOp{TxnOpKind::kCreate, "/a", std::make_shared<const std::string>("x"), 7, 0, 0});
  t.ops.push_back(TxnOp{TxnOpKind::kSet, "/b",
                        std::make_shared<const std::string>(std::string("\0y", 2)), 0, 3, 0});
  t.ops.push_back(TxnOp{TxnOpKind::kDelete, "/c", nullptr, 0, 0, 0});
  t.ops.push_back(TxnOp{TxnOpKind::kCreateSession, "", nullptr, 9, 0, 5000});
  t.ops.push_back(TxnOp{TxnOpKind::kCloseSession, "", nullptr, 9, 0, 0});
  return t;
}

}  // namespace

TEST_CASE("records round-trip and the reader ends cleanly") {
  std::string log = Records(5);
  int n;
  uint64_t end;
  std::string why;
  CHECK(ReadAll(log, &n, &end, &why) == Outcome::kEnd);
  CHECK(n == 5);
  CHECK(end == log.size());
  CHECK(ReadAll("", &n, &end, &why) == Outcome::kEnd);
}

TEST_CASE("a record cut short at the end of the file is a torn tail") {
  std::vector<uint64_t> offsets;
  std::string log = Records(5, &offsets);
  for (uint64_t cut = offsets[4] + 1; cut < log.size(); cut += 3) {
    INFO("cut at " << cut);
    int n;
    uint64_t end;
    std::string why;
    CHECK(ReadAll(log.substr(0, cut), &n, &end, &why) == Outcome::kTornTail);
    CHECK(n == 4);
    CHECK(end == offsets[4]);
  }
}

TEST_CASE("zeros after the last record are a torn tail") {
  std::string log = Records(3) + std::string(100, '\0');
  int n;
  uint64_t end;
  std::string why;
  CHECK(ReadAll(log, &n, &end, &why) == Outcome::kTornTail);
  CHECK(n == 3);
}

TEST_CASE("a flipped byte in the last record is a torn tail, anywhere else corruption") {
  std::vector<uint64_t> offsets;
  std::string log = Records(6, &offsets);
  for (size_t at = 0; at < log.size(); ++at) {
    std::string bad = log;
    bad[at] ^= 0x40;
    int n;
    uint64_t end;
    std::string why;
    Outcome o = ReadAll(bad, &n, &end, &why);
    size_t victim = std::upper_bound(offsets.begin(), offsets.end(), at) - offsets.begin() - 1;
    INFO("byte " << at << " in record " << victim << ": " << why);
    CHECK(n == static_cast<int>(victim));
    CHECK(end == offsets[victim]);
    if (victim == offsets.size() - 1)
      CHECK(o == Outcome::kTornTail);
    else
      CHECK(o == Outcome::kCorrupt);
    CHECK(!why.empty());
  }
}

TEST_CASE("the CRC mask round-trips") {
  for (uint32_t v : {0u, 1u, 0xffffffffu, 0x12345678u}) CHECK(wal::UnmaskCrc(wal::MaskCrc(v)) == v);
  CHECK(wal::MaskCrc(0x12345678u) != 0x12345678u);
}

TEST_CASE("transactions round-trip through their encoding") {
  Txn t = SampleTxn();
  std::string payload;
  EncodeTxn(t, &payload);
  auto back = DecodeTxn(payload);
  REQUIRE(back.ok());
  CHECK(back->zxid == 42);
  CHECK(back->time_ms == t.time_ms);
  REQUIRE(back->ops.size() == 5);
  CHECK(back->ops[0].path == "/a");
  CHECK(*back->ops[0].data == "x");
  CHECK(back->ops[0].session == 7);
  CHECK(*back->ops[1].data == std::string("\0y", 2));
  CHECK(back->ops[1].version == 3);
  CHECK(back->ops[3].timeout_ms == 5000);
  CHECK(back->ops[4].kind == TxnOpKind::kCloseSession);
  // Every truncation is refused, never misread.
  for (size_t n = 0; n < payload.size(); ++n)
    CHECK(DecodeTxn(std::string_view(payload).substr(0, n)).status().code() == Code::kCorruption);
  CHECK(DecodeTxn(payload + "x").status().code() == Code::kCorruption);
}

TEST_CASE("fuzz: the reader and decoder survive random damage") {
  std::mt19937 rng(1234);
  std::string base;
  for (int i = 0; i < 20; ++i) {
    Txn t = SampleTxn();
    t.zxid = i + 1;
    std::string p;
    EncodeTxn(t, &p);
    wal::AppendRecord(&base, wal::kTxn, p);
  }
  int torn = 0, corrupt = 0, clean = 0;
  for (int iter = 0; iter < 3000; ++iter) {
    std::string s = base;
    int edits = 1 + static_cast<int>(rng() % 6);
    for (int e = 0; e < edits; ++e) {
      size_t at = rng() % s.size();
      switch (rng() % 4) {
        case 0: s[at] = static_cast<char>(rng()); break;
        case 1: s.resize(at); break;
        case 2: s.insert(at, std::string(1 + rng() % 9, static_cast<char>(rng()))); break;
        default: s[at] ^= static_cast<char>(1 << (rng() % 8)); break;
      }
      if (s.empty()) break;
    }
    wal::RecordReader r(s);
    wal::Record rec;
    std::string why;
    Outcome o;
    while ((o = r.Next(&rec, &why)) == Outcome::kRecord) {
      REQUIRE(rec.offset + wal::kHeaderSize + rec.payload.size() <= s.size());
      (void)DecodeTxn(rec.payload);  // valid or kCorruption, never a crash
    }
    REQUIRE(r.good_end() <= s.size());
    (o == Outcome::kTornTail ? torn : o == Outcome::kCorrupt ? corrupt : clean)++;
  }
  CHECK(torn > 0);
  CHECK(corrupt > 0);
  // Arbitrary bytes fed straight to the decoder.
  for (int iter = 0; iter < 3000; ++iter) {
    std::string junk(rng() % 64, '\0');
    for (char& c : junk) c = static_cast<char>(rng());
    (void)DecodeTxn(junk);
  }
}
