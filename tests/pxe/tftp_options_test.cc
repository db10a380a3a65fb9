#include <catch2/catch.hpp>

#include "pxe/tftp_options.h"

using namespace kiln::pxe::tftp;

namespace {
std::string OackValue(const Negotiated& n, const std::string& name) {
  for (const auto& [k, v] : n.oack)
    if (k == name) return v;
  return "(absent)";
}
}  // namespace

TEST_CASE("no options: RFC 1350 defaults and no OACK") {
  auto n = Negotiate({}, Limits{}, 1000);
  CHECK(n.blksize == 512);
  CHECK(n.windowsize == 1);
  CHECK(n.oack.empty());
}

TEST_CASE("blksize, tsize, timeout and windowsize are answered in the client's order") {
  auto n = Negotiate({{"tsize", "0"}, {"blksize", "1468"}, {"timeout", "3"}, {"windowsize", "8"}},
                     Limits{}, 12345);
  CHECK(n.blksize == 1468);
  CHECK(n.windowsize == 8);
  CHECK(n.timeout == std::chrono::seconds(3));
  CHECK(n.tsize == 12345u);
  REQUIRE(n.oack.size() == 4);
  CHECK(n.oack[0] == Option{"tsize", "12345"});
  CHECK(n.oack[1] == Option{"blksize", "1468"});
  CHECK(n.oack[3] == Option{"windowsize", "8"});
}

TEST_CASE("absurd values are lowered or ignored") {
  Limits l;
  auto big = Negotiate({{"blksize", "99999999"}, {"windowsize", "70000"}}, l, 1);
  CHECK(big.blksize == 65464);
  CHECK(OackValue(big, "blksize") == "65464");
  // One window must fit max_window_bytes: 256 KiB / 65464 = 4.
  CHECK(big.windowsize == 4);

  auto small = Negotiate({{"blksize", "7"}, {"windowsize", "0"}, {"timeout", "0"}}, l, 1);
  CHECK(small.blksize == 512);
  CHECK(small.windowsize == 1);
  CHECK(small.oack.empty());

  auto junk = Negotiate({{"blksize", "12ab"}, {"timeout", "256"}, {"tsize", "-1"}, {"x", "y"}}, l, 1);
  CHECK(junk.blksize == 512);
  CHECK(OackValue(junk, "timeout") == "(absent)");
  CHECK(OackValue(junk, "tsize") == "1");  // tsize in a read request: the server says the size
  CHECK(junk.oack.size() == 1);

  auto neg = Negotiate({{"blksize", "-5"}, {"windowsize", "-1"}}, l, 1);
  CHECK(neg.oack.empty());
}

TEST_CASE("server limits cap blksize and windowsize") {
  Limits l;
  l.max_blksize = 1468;
  l.max_windowsize = 16;
  auto n = Negotiate({{"blksize", "9000"}, {"windowsize", "64"}}, l, 1);
  CHECK(n.blksize == 1468);
  CHECK(n.windowsize == 16);
}

TEST_CASE("tsize is left out when the size is not known") {
  auto n = Negotiate({{"tsize", "0"}}, Limits{}, std::nullopt);
  CHECK(n.oack.empty());
}
