#pragma once
// Two SHA-256 digests computed together.
//
// Why: with the CPU's SHA extensions, one digest runs at the latency of its
// round instruction (each SHA256RNDS2 needs the state the previous one
// made), about 1.6 GB/s here, while the core could issue twice as many.
// Two independent messages' rounds, interleaved, fill that wait. SHA-256
// was the largest single cost of a capture (a third of the server's CPU,
// a quarter of the client's) and of a deploy, and both have many objects
// to hash side by side. Where the CPU lacks the extensions, the two are
// hashed one after the other (Nettle).
//
// A message is a list of pieces (a stored frame's blocks lie between their
// headers): blocks that straddle two pieces are gathered, the rest hashed
// where they lie.

#include <span>
#include <string_view>

#include "common/hash.h"

namespace kiln {

using Sha256Pieces = std::span<const std::string_view>;

void Sha256Two(Sha256Pieces a, Sha256Pieces b, Sha256Digest* da, Sha256Digest* db);

inline void Sha256Two(std::string_view a, std::string_view b, Sha256Digest* da, Sha256Digest* db) {
  Sha256Two(Sha256Pieces(&a, 1), Sha256Pieces(&b, 1), da, db);
}

// Whether this CPU hashes two at once (false: one after the other).
bool Sha256TwoInterleaved();

}  // namespace kiln
