#include "common/hash.h"

#include <catch2/catch.hpp>

using namespace kiln;

TEST_CASE("SHA-256 matches the FIPS 180-2 test vectors") {
  CHECK(Sha256Hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(Sha256Hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  Sha256 h;  // incremental equals one-shot
  h.Update("a");
  h.Update("bc");
  CHECK(ToHex(h.Final()) == Sha256Hex("abc"));
}

TEST_CASE("IsSha256Hex accepts only 64 lower-case hex digits") {
  CHECK(IsSha256Hex(Sha256Hex("x")));
  CHECK_FALSE(IsSha256Hex("abc"));
  CHECK_FALSE(IsSha256Hex(std::string(64, 'A')));
  CHECK_FALSE(IsSha256Hex(std::string(63, 'a') + "/"));
}

TEST_CASE("CRC-32C matches the RFC 3720 check value and extends in pieces") {
  CHECK(Crc32c("123456789", 9) == 0xE3069283u);
  std::string zeros(32, '\0');
  CHECK(Crc32c(zeros.data(), zeros.size()) == 0x8A9136AAu);
  std::string data = "The quick brown fox jumps over the lazy dog, many times over.";
  uint32_t whole = Crc32c(data.data(), data.size());
  uint32_t part = Crc32cExtend(Crc32c(data.data(), 13), data.data() + 13, data.size() - 13);
  CHECK(whole == part);
}

TEST_CASE("RandomHex gives distinct tokens of the asked size") {
  auto a = RandomHex(32), b = RandomHex(32);
  CHECK(a.size() == 64);
  CHECK(a != b);
}
