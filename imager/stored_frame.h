#pragma once
// zstd frames that store bytes as they are, for data that does not
// compress (already compressed files, random bytes).
//
// zstd at level 3 would reach the same result, a frame of raw blocks, but
// only after running its match finder over every byte: on random data that
// was about 0.5 s of CPU per GiB here, a tenth of a capture's client CPU,
// for nothing. A cheap look at a sample of the bytes decides first.
//
// The frames are ordinary zstd frames (RFC 8878: single segment, content
// size stated, raw blocks of at most 128 KiB, no checksum), so every reader
// decompresses them with libzstd as any other. Objects are named by their
// uncompressed bytes, so how a frame was made never changes a digest.

#include <string>
#include <string_view>

namespace kiln::imager {

// True when a sample of data has bytes spread so evenly over all 256
// values that zstd would most likely store it raw anyway. Deterministic.
// Data with long repeats of random-looking bytes passes too and is then
// stored bigger than zstd would have made it: rare in a filesystem, and
// costs space, never correctness.
bool LooksIncompressible(std::string_view data);

// Appends one zstd frame holding data in raw blocks.
void AppendStoredFrame(std::string_view data, std::string* out);

}  // namespace kiln::imager
