// bench/hash/sha256_bench [MiB] [rounds]: GB/s of SHA-256 over 64 KiB and
// 1 MiB objects (a capture's chunks and whole files), one at a time
// (Nettle, kiln's Sha256Of) against two at once (Sha256Two), alternating
// within each round; prints each round and the medians.

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "common/sha256_two.h"

using namespace kiln;

namespace {

double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  size_t mib = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 256;
  int rounds = argc > 2 ? std::atoi(argv[2]) : 5;
  std::string data(mib << 20, '\0');
  std::mt19937_64 rng(1);
  for (size_t i = 0; i + 8 <= data.size(); i += 8) {
    uint64_t r = rng();
    std::memcpy(&data[i], &r, 8);
  }
  std::printf("interleaved on this CPU: %s\n", Sha256TwoInterleaved() ? "yes" : "no");
  uint8_t sink = 0;
  for (size_t object : {size_t{64} << 10, size_t{1} << 20}) {
    size_t n = data.size() / object;
    std::vector<std::string_view> objs;
    for (size_t i = 0; i < n; ++i) objs.emplace_back(data.data() + i * object, object);
    std::vector<double> one, two;
    for (int r = 0; r < rounds; ++r) {
      auto t = std::chrono::steady_clock::now();
      for (auto o : objs) sink ^= Sha256Of(o)[0];
      one.push_back(static_cast<double>(n * object) / Seconds(t) / 1e9);
      t = std::chrono::steady_clock::now();
      for (size_t i = 0; i + 1 < n; i += 2) {
        Sha256Digest a, b;
        Sha256Two(objs[i], objs[i + 1], &a, &b);
        sink ^= a[0] ^ b[0];
      }
      two.push_back(static_cast<double>(n / 2 * 2 * object) / Seconds(t) / 1e9);
      std::printf("%7zu KiB objects, round %d: one at a time %.2f GB/s, two at once %.2f GB/s\n",
                  object >> 10, r + 1, one.back(), two.back());
    }
    std::printf(
        "%7zu KiB objects, medians: one at a time %.2f GB/s, two at once %.2f GB/s (%.2fx)\n",
        object >> 10, Median(one), Median(two), Median(two) / Median(one));
  }
  // The digests must not be optimised away: their xor goes to the output.
  std::printf("(checksum %02x)\n", sink);
  return 0;
}
