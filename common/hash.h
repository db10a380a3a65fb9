#pragma once
// Digests kiln relies on: SHA-256 names image objects and manifests;
// CRC-32C frames write-ahead-log records.

#include <nettle/sha2.h>

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace kiln {

using Sha256Digest = std::array<uint8_t, 32>;

// Incremental SHA-256. Nettle underneath (its SHA-NI code where the CPU
// has it): a small library, where OpenSSL's libcrypto made about 120 of
// the page faults of every `kiln` and `kiln-agent` start, and 4.5 MB of
// the install environment.
class Sha256 {
 public:
  Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void Update(const void* data, size_t len);
  void Update(std::string_view s) { Update(s.data(), s.size()); }
  // Finishes the digest; the object must not be updated afterwards.
  Sha256Digest Final();

 private:
  sha256_ctx ctx_;
};

Sha256Digest Sha256Of(std::string_view data);
// Lower-case hex: the form used in file names, URLs and JSON.
std::string ToHex(const Sha256Digest& d);
std::string Sha256Hex(std::string_view data);
// True for exactly 64 lower-case hex characters.
bool IsSha256Hex(std::string_view s);

// CRC-32C (Castagnoli). Extend lets a record be checksummed in pieces.
uint32_t Crc32c(const void* data, size_t len);
uint32_t Crc32cExtend(uint32_t crc, const void* data, size_t len);

// Cryptographically random bytes as hex (tokens, session secrets).
std::string RandomHex(size_t bytes);

}  // namespace kiln
