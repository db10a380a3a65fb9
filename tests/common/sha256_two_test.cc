// Sha256Two: two digests at once equal two digests one at a time, for any
// lengths and any split of the messages into pieces.

#include "common/sha256_two.h"

#include <catch2/catch.hpp>
#include <random>
#include <string>
#include <vector>

using namespace kiln;

namespace {

std::string Random(size_t n, std::mt19937& rng) {
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng());
  return s;
}

// s cut at random places (empty pieces included).
std::vector<std::string_view> Split(std::string_view s, std::mt19937& rng) {
  std::vector<std::string_view> out;
  size_t pos = 0;
  while (pos < s.size()) {
    size_t n = std::min<size_t>(s.size() - pos, rng() % 200);
    out.push_back(s.substr(pos, n));
    pos += n;
  }
  if (rng() % 2) out.push_back({});
  return out;
}

}  // namespace

TEST_CASE("Sha256Two matches the FIPS 180-2 vectors") {
  Sha256Digest a, b;
  Sha256Two("abc", "", &a, &b);
  CHECK(ToHex(a) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(ToHex(b) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  std::string two_blocks = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
  Sha256Two(two_blocks, std::string(1000000, 'a'), &a, &b);
  CHECK(ToHex(a) == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  CHECK(ToHex(b) == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  // Where the CPU lacks the SHA extensions, the two are hashed one after
  // the other and these tests do not reach the interleaved code.
  if (!Sha256TwoInterleaved()) WARN("no SHA extensions here: only the fallback is tested");
}

TEST_CASE("Sha256Two equals two single digests for every length and split") {
  std::mt19937 rng(42);
  std::vector<size_t> lengths;
  for (size_t n = 0; n <= 200; ++n) lengths.push_back(n);
  for (size_t n : {255, 256, 257, 4095, 4096, 65536, 65537, 131072 + 3, 1 << 20})
    lengths.push_back(n);
  for (size_t i = 0; i < lengths.size(); ++i) {
    // Paired with a length from the other end: one message is longer.
    size_t la = lengths[i], lb = lengths[lengths.size() - 1 - i];
    std::string a = Random(la, rng), b = Random(lb, rng);
    CAPTURE(la, lb);
    Sha256Digest da, db;
    Sha256Two(a, b, &da, &db);
    CHECK(da == Sha256Of(a));
    CHECK(db == Sha256Of(b));
    auto pa = Split(a, rng), pb = Split(b, rng);
    Sha256Two(pa, pb, &da, &db);
    CHECK(da == Sha256Of(a));
    CHECK(db == Sha256Of(b));
    // The same message twice.
    Sha256Two(a, a, &da, &db);
    CHECK(da == Sha256Of(a));
    CHECK(db == da);
  }
}
