#pragma once
// Content-defined chunking: where a large file is cut into objects.
//
// A gear rolling hash (FastCDC style) looks at the bytes themselves, so an
// insertion or deletion moves only the cut points near it and every later
// chunk keeps its digest: a small change inside a large file costs a few
// chunks to store and to send, not the rest of the file.
//
// Cut rule, for a chunk starting at s: no cut before s+min; between s+min
// and s+avg a cut needs the hash to match the stricter mask (more bits), after
// s+avg the looser one ("normalised chunking", which narrows the size
// spread); a cut is forced at s+max. The gear table comes from a fixed seed,
// so chunk boundaries, and therefore object digests, are identical on every
// machine and in every version of kiln. Changing the table or the sizes
// changes every digest: they are part of the image format.
//
// Files up to kWholeFileMax bytes are one object; larger ones are chunked.

#include <cstddef>
#include <cstdint>

namespace kiln::imager {

inline constexpr size_t kChunkMin = 16 * 1024;
inline constexpr size_t kChunkAvg = 64 * 1024;
inline constexpr size_t kChunkMax = 256 * 1024;
inline constexpr uint64_t kWholeFileMax = 1024 * 1024;

// The largest object kiln makes or accepts.
inline constexpr uint64_t kMaxObjectSize = kWholeFileMax;

// Returns the length of the next chunk at the start of data[0, len): a cut
// point in (kChunkMin, kChunkMax], or len when no cut is found before the
// end of the data. A result equal to len < kChunkMax therefore means "no cut
// yet": a caller with more data to come must call again with at least
// kChunkMax bytes (or all that is left) before taking it.
size_t NextChunkLength(const uint8_t* data, size_t len);

}  // namespace kiln::imager
