#include "common/sha256_two.h"

#include <nettle/sha2.h>

#include <algorithm>
#include <cstring>
#include <type_traits>

#if defined(__x86_64__)
#include <immintrin.h>
#define KILN_SHA_TWO 1
#endif

namespace kiln {
namespace {

constexpr size_t kBlock = 64;

// The digest of a message whose first blocks were compressed here is
// finished by Nettle from that state: its context's count is the number of
// whole blocks done, a 64-bit block count in the Nettle kiln builds with (a
// version that kept the count another way would fail this check).
static_assert(std::is_same_v<decltype(sha256_ctx::count), uint64_t>);

#if KILN_SHA_TWO

alignas(16) constexpr uint32_t kK[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

#define KILN_SHA_TARGET __attribute__((target("sha,sse4.1,ssse3")))

// One message's state in the layout SHA256RNDS2 works on: ABEF and CDGH.
struct Lanes {
  __m128i abef, cdgh;
};

KILN_SHA_TARGET inline Lanes Load(const uint32_t h[8]) {
  __m128i abcd = _mm_loadu_si128(reinterpret_cast<const __m128i*>(h));
  __m128i efgh = _mm_loadu_si128(reinterpret_cast<const __m128i*>(h + 4));
  abcd = _mm_shuffle_epi32(abcd, 0xB1);  // B A D C (low to high: B, A, D, C)
  efgh = _mm_shuffle_epi32(efgh, 0x1B);  // H G F E
  return {_mm_alignr_epi8(abcd, efgh, 8), _mm_blend_epi16(efgh, abcd, 0xF0)};
}

KILN_SHA_TARGET inline void Store(const Lanes& s, uint32_t h[8]) {
  __m128i feba = _mm_shuffle_epi32(s.abef, 0x1B);
  __m128i dchg = _mm_shuffle_epi32(s.cdgh, 0xB1);
  _mm_storeu_si128(reinterpret_cast<__m128i*>(h), _mm_blend_epi16(feba, dchg, 0xF0));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(h + 4), _mm_alignr_epi8(dchg, feba, 8));
}

// Blocks of two messages, the same number of each, their rounds
// interleaved. m[s][j] holds words 4j..4j+3 of the schedule's current
// window for message s.
KILN_SHA_TARGET void CompressTwo(uint32_t ha[8], const uint8_t* a, uint32_t hb[8], const uint8_t* b,
                                 size_t blocks) {
  const __m128i swap = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
  Lanes st[2] = {Load(ha), Load(hb)};
  const uint8_t* in[2] = {a, b};
  for (; blocks > 0; --blocks) {
    Lanes save[2] = {st[0], st[1]};
    __m128i m[2][4];
#pragma GCC unroll 2
    for (int s = 0; s < 2; ++s) {
#pragma GCC unroll 4
      for (int j = 0; j < 4; ++j) {
        m[s][j] = _mm_shuffle_epi8(
            _mm_loadu_si128(reinterpret_cast<const __m128i*>(in[s] + 16 * j)), swap);
      }
    }
    // Rounds 4i..4i+3, for both messages (unrolled whole: the schedule's
    // registers are named by i).
#pragma GCC unroll 16
    for (int i = 0; i < 16; ++i) {
      const __m128i k = _mm_load_si128(reinterpret_cast<const __m128i*>(kK + 4 * i));
      __m128i wk[2];
#pragma GCC unroll 2
      for (int s = 0; s < 2; ++s) {
        wk[s] = _mm_add_epi32(m[s][i & 3], k);
        st[s].cdgh = _mm_sha256rnds2_epu32(st[s].cdgh, st[s].abef, wk[s]);
      }
      // Words 4(i+1).. from words 4(i-3).. (their msg1 already applied),
      // 4(i-1).. and 4i.., for the rounds of step i+1.
      if (i >= 3 && i <= 14) {
#pragma GCC unroll 2
        for (int s = 0; s < 2; ++s) {
          __m128i t = _mm_alignr_epi8(m[s][i & 3], m[s][(i + 3) & 3], 4);
          __m128i next = _mm_add_epi32(m[s][(i + 1) & 3], t);
          m[s][(i + 1) & 3] = _mm_sha256msg2_epu32(next, m[s][i & 3]);
        }
      }
#pragma GCC unroll 2
      for (int s = 0; s < 2; ++s) {
        wk[s] = _mm_shuffle_epi32(wk[s], 0x0E);
        st[s].abef = _mm_sha256rnds2_epu32(st[s].abef, st[s].cdgh, wk[s]);
      }
      if (i >= 1 && i <= 12) {
#pragma GCC unroll 2
        for (int s = 0; s < 2; ++s) {
          m[s][(i + 3) & 3] = _mm_sha256msg1_epu32(m[s][(i + 3) & 3], m[s][i & 3]);
        }
      }
    }
    for (int s = 0; s < 2; ++s) {
      st[s].abef = _mm_add_epi32(st[s].abef, save[s].abef);
      st[s].cdgh = _mm_add_epi32(st[s].cdgh, save[s].cdgh);
      in[s] += kBlock;
    }
  }
  Store(st[0], ha);
  Store(st[1], hb);
}
#endif  // KILN_SHA_TWO

// Walks a message's pieces a block at a time.
class Cursor {
 public:
  explicit Cursor(Sha256Pieces p) : p_(p) {
    for (auto s : p_) left_ += s.size();
  }
  // The next block and how many whole blocks lie contiguous from it (at
  // least 1), or 0 when less than a block is left.
  size_t Next(const uint8_t** at) {
    if (left_ < kBlock) return 0;
    Skip();
    size_t here = p_[i_].size() - off_;
    if (here >= kBlock) {
      *at = reinterpret_cast<const uint8_t*>(p_[i_].data() + off_);
      return here / kBlock;
    }
    // Straddles pieces: gathered.
    size_t got = 0, i = i_, off = off_;
    while (got < kBlock) {
      size_t n = std::min(kBlock - got, p_[i].size() - off);
      std::memcpy(gather_ + got, p_[i].data() + off, n);
      got += n;
      off += n;
      if (off == p_[i].size()) {
        ++i;
        off = 0;
      }
    }
    *at = gather_;
    return 1;
  }
  void Advance(size_t n) {
    left_ -= n;
    while (n > 0) {
      Skip();
      size_t k = std::min(n, p_[i_].size() - off_);
      off_ += k;
      n -= k;
    }
  }
  // Hashes what is left into ctx.
  void Rest(sha256_ctx* ctx) {
    for (; i_ < p_.size(); ++i_, off_ = 0)
      sha256_update(ctx, p_[i_].size() - off_,
                    reinterpret_cast<const uint8_t*>(p_[i_].data() + off_));
  }

 private:
  void Skip() {
    while (i_ < p_.size() && off_ == p_[i_].size()) {
      ++i_;
      off_ = 0;
    }
  }
  Sha256Pieces p_;
  size_t i_ = 0, off_ = 0;
  uint64_t left_ = 0;
  uint8_t gather_[kBlock];
};

// The digest of a message whose first `blocks` blocks gave state h.
Sha256Digest Finish(const uint32_t h[8], uint64_t blocks, Cursor& rest) {
  sha256_ctx ctx;
  sha256_init(&ctx);
  std::memcpy(ctx.state, h, sizeof(ctx.state));
  ctx.count = blocks;
  ctx.index = 0;
  rest.Rest(&ctx);
  Sha256Digest d{};
  sha256_digest(&ctx, d.size(), d.data());
  return d;
}

Sha256Digest OneAtATime(Sha256Pieces p) {
  Sha256 h;
  for (auto s : p) h.Update(s);
  return h.Final();
}

bool HasShaExtensions() {
#if KILN_SHA_TWO
  static const bool has = __builtin_cpu_supports("sha") && __builtin_cpu_supports("sse4.1") &&
                          __builtin_cpu_supports("ssse3");
  return has;
#else
  return false;
#endif
}

}  // namespace

bool Sha256TwoInterleaved() {
  return HasShaExtensions();
}

void Sha256Two(Sha256Pieces a, Sha256Pieces b, Sha256Digest* da, Sha256Digest* db) {
  if (!HasShaExtensions()) {
    *da = OneAtATime(a);
    *db = OneAtATime(b);
    return;
  }
  sha256_ctx init;
  sha256_init(&init);
  uint32_t ha[8], hb[8];
  std::memcpy(ha, init.state, sizeof(ha));
  std::memcpy(hb, init.state, sizeof(hb));
  Cursor ca(a), cb(b);
  uint64_t blocks = 0;
  for (;;) {
    const uint8_t *pa, *pb;
    size_t ra = ca.Next(&pa);
    if (ra == 0) break;
    size_t rb = cb.Next(&pb);
    if (rb == 0) break;
    size_t run = std::min(ra, rb);
#if KILN_SHA_TWO
    CompressTwo(ha, pa, hb, pb, run);
#endif
    ca.Advance(run * kBlock);
    cb.Advance(run * kBlock);
    blocks += run;
  }
  // The longer message's remaining blocks, and both tails, one at a time.
  *da = Finish(ha, blocks, ca);
  *db = Finish(hb, blocks, cb);
}

}  // namespace kiln
