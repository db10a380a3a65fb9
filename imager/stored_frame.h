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
#include <vector>

namespace kiln::imager {

// True when a sample of data has bytes spread so evenly over all 256
// values that zstd would most likely store it raw anyway. Deterministic.
// Data with long repeats of random-looking bytes passes too and is then
// stored bigger than zstd would have made it: rare in a filesystem, and
// costs space, never correctness.
bool LooksIncompressible(std::string_view data);

// Appends one zstd frame holding data in raw blocks.
void AppendStoredFrame(std::string_view data, std::string* out);

// The same frame as pieces, for sending without copying data: *heads gets
// the frame's header and its blocks' headers (it must stay unchanged while
// the pieces are in use), and *pieces is appended views of heads and of
// data, in the frame's order.
void StoredFramePieces(std::string_view data, std::string* heads,
                       std::vector<std::string_view>* pieces);

// Calls fn with each raw block's bytes in order and returns true when
// frame is exactly a frame AppendStoredFrame writes (whoever wrote it):
// single segment, its size stated, no dictionary or checksum, only raw
// blocks adding up to that size, nothing after the last. Anything else
// returns false, maybe after some calls, and is for libzstd to read: an
// upload's stored frames are verified by hashing their blocks where they
// lie instead of copying them out first.
template <typename Fn>
bool ForEachStoredBlock(std::string_view frame, Fn&& fn);

}  // namespace kiln::imager

namespace kiln::imager::stored_frame_internal {
// The frame's content size and the offset of its first block; false when
// its header is not one AppendStoredFrame writes.
bool ParseHeader(std::string_view frame, uint64_t* size, size_t* at);
}  // namespace kiln::imager::stored_frame_internal

namespace kiln::imager {

template <typename Fn>
bool ForEachStoredBlock(std::string_view frame, Fn&& fn) {
  uint64_t size, seen = 0;
  size_t at;
  if (!stored_frame_internal::ParseHeader(frame, &size, &at)) return false;
  for (;;) {
    if (frame.size() - at < 3) return false;
    const auto* h = reinterpret_cast<const uint8_t*>(frame.data() + at);
    uint32_t header = h[0] | (h[1] << 8) | (uint32_t{h[2]} << 16);
    bool last = header & 1;
    uint32_t type = (header >> 1) & 3;
    size_t n = header >> 3;
    at += 3;
    if (type != 0 || n > 128 * 1024 || frame.size() - at < n || seen + n > size) return false;
    fn(frame.substr(at, n));
    at += n;
    seen += n;
    if (last) return seen == size && at == frame.size();
  }
}

}  // namespace kiln::imager
