// The TFTP packet codec: round trips, leniency where firmware needs it, and
// a deterministic fuzz loop over mutated and random datagrams.

#include <catch2/catch.hpp>

#include <random>

#include "pxe/tftp_packet.h"

using namespace kiln;
using namespace kiln::pxe::tftp;

TEST_CASE("a read request with options round-trips, names lower-cased") {
  std::string wire = MakeRequest(Opcode::kRrq, "pxelinux.0", "OCTET",
                                 {{"BlkSize", "1468"}, {"tsize", "0"}, {"windowsize", "8"}});
  auto p = Parse(wire);
  REQUIRE(p.ok());
  auto& r = std::get<Request>(*p);
  CHECK(r.op == Opcode::kRrq);
  CHECK(r.filename == "pxelinux.0");
  CHECK(r.mode == "octet");
  REQUIRE(r.options.size() == 3);
  CHECK(r.options[0] == Option{"blksize", "1468"});
  CHECK(r.options[2] == Option{"windowsize", "8"});
}

TEST_CASE("DATA, ACK, ERROR and OACK round-trip") {
  auto d = Parse(MakeData(65535, "abc"));
  REQUIRE(d.ok());
  CHECK(std::get<Data>(*d).block == 65535);
  CHECK(std::get<Data>(*d).payload == "abc");
  auto a = Parse(MakeAck(7));
  REQUIRE(a.ok());
  CHECK(std::get<Ack>(*a).block == 7);
  auto e = Parse(MakeError(ErrorCode::kFileNotFound, "no such file"));
  REQUIRE(e.ok());
  CHECK(std::get<Error>(*e).code == 1);
  CHECK(std::get<Error>(*e).message == "no such file");
  auto o = Parse(MakeOack({{"blksize", "1428"}}));
  REQUIRE(o.ok());
  CHECK(std::get<Oack>(*o).options == std::vector<Option>{{"blksize", "1428"}});
}

TEST_CASE("requests tolerate NUL padding, dangling names and duplicate options") {
  std::string wire = MakeRequest(Opcode::kRrq, "f", "octet", {{"blksize", "512"}});
  auto padded = Parse(wire + std::string(20, '\0'));
  REQUIRE(padded.ok());
  CHECK(std::get<Request>(*padded).options.size() == 1);

  auto dangling = Parse(wire + std::string("tsize\0", 6));
  REQUIRE(dangling.ok());
  CHECK(std::get<Request>(*dangling).options.size() == 1);

  auto unterminated = Parse(wire + "garbage");
  REQUIRE(unterminated.ok());

  auto dup = Parse(MakeRequest(Opcode::kRrq, "f", "octet", {{"blksize", "1"}, {"BLKSIZE", "2"}}));
  REQUIRE(dup.ok());
  CHECK(std::get<Request>(*dup).options == std::vector<Option>{{"blksize", "1"}});
}

TEST_CASE("absurd options are ignored, not fatal") {
  std::vector<Option> many;
  for (int i = 0; i < 100; ++i) many.emplace_back("opt" + std::to_string(i), "v");
  auto p = Parse(MakeRequest(Opcode::kRrq, "f", "octet", many));
  REQUIRE(p.ok());
  CHECK(std::get<Request>(*p).options.size() == kMaxOptions);

  auto longval = Parse(MakeRequest(Opcode::kRrq, "f", "octet",
                                   {{"blksize", std::string(1000, '9')}, {"tsize", "0"}}));
  REQUIRE(longval.ok());
  CHECK(std::get<Request>(*longval).options == std::vector<Option>{{"tsize", "0"}});
}

TEST_CASE("malformed packets are errors that say what is wrong") {
  CHECK(Parse(std::string_view("")).status().message() == "packet of 0 bytes is too short");
  CHECK(Parse(std::string_view("\0", 1)).status().message() == "packet of 1 bytes is too short");
  CHECK(Parse(std::string_view("\0\x09xx", 4)).status().message() == "unknown opcode 9");
  CHECK(Parse(std::string_view("\0\x01name", 6)).status().message() ==
        "file name is not NUL-terminated within 1024 bytes");
  CHECK(Parse(std::string_view("\0\x01\0octet\0", 9)).status().message() == "empty file name");
  CHECK(Parse(std::string_view("\0\x01" "f\0oct", 7)).status().message() ==
        "transfer mode is missing or not NUL-terminated");
  CHECK(Parse(std::string_view("\0\x04\0", 3)).status().message() == "ACK packet shorter than 4 bytes");
  CHECK(Parse(std::string_view("\0\x03\0", 3)).status().message() == "DATA packet shorter than 4 bytes");
  std::string long_name = "\0\x01" + std::string(2000, 'a');
  long_name[0] = 0;
  long_name.push_back('\0');
  long_name += "octet";
  long_name.push_back('\0');
  CHECK(!Parse(long_name).ok());
}

TEST_CASE("fuzz: mutated and random datagrams never crash the parser") {
  std::mt19937 rng(0x6b696c6e);  // fixed seed: reproducible
  std::vector<std::string> seeds = {
      MakeRequest(Opcode::kRrq, "pxelinux.cfg/01-52-54-00-12-34-56", "octet",
                  {{"blksize", "1468"}, {"tsize", "0"}, {"windowsize", "16"}, {"timeout", "3"}}),
      MakeRequest(Opcode::kWrq, "x", "netascii"),
      MakeData(1, std::string(512, 'x')),
      MakeAck(3),
      MakeError(ErrorCode::kOptionRefused, "nope"),
      MakeOack({{"blksize", "1468"}, {"tsize", "123"}}),
  };
  int parsed = 0;
  for (int iter = 0; iter < 200000; ++iter) {
    std::string d;
    if (iter % 10 == 0) {
      d.resize(rng() % 600);
      for (char& c : d) c = static_cast<char>(rng());
      if (d.size() >= 2 && rng() % 2) {
        d[0] = 0;
        d[1] = static_cast<char>(rng() % 8);
      }
    } else {
      d = seeds[rng() % seeds.size()];
      int edits = 1 + static_cast<int>(rng() % 6);
      for (int e = 0; e < edits; ++e) {
        switch (rng() % 5) {
          case 0: if (!d.empty()) d[rng() % d.size()] = static_cast<char>(rng()); break;
          case 1: if (!d.empty()) d.resize(rng() % d.size()); break;
          case 2: d.insert(d.begin() + static_cast<long>(rng() % (d.size() + 1)), static_cast<char>(rng() % 3 ? 0 : rng())); break;
          case 3: if (!d.empty()) d.erase(d.begin() + static_cast<long>(rng() % d.size())); break;
          case 4: d += d.substr(0, rng() % (d.size() + 1)); break;
        }
      }
    }
    auto p = Parse(d);
    if (!p.ok()) {
      CHECK_FALSE(p.status().message().empty());
      continue;
    }
    ++parsed;
    // Whatever parsed respects the caps.
    if (auto* r = std::get_if<Request>(&*p)) {
      REQUIRE(!r->filename.empty());
      REQUIRE(r->filename.size() <= kMaxFilename);
      REQUIRE(r->options.size() <= kMaxOptions);
      for (const auto& [k, v] : r->options) {
        REQUIRE(k.size() <= kMaxOptionName);
        REQUIRE(v.size() <= kMaxOptionValue);
      }
    }
  }
  CHECK(parsed > 1000);  // the mutations still reach the deep paths
}
