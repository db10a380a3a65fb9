#pragma once
// The framing shared by the coordination log segments and snapshots. The
// grammar is in docs/COORD_WAL.md; writer (wal_writer.h) and reader
// (wal_reader.h) share nothing but this header. Numbers here are on disk:
// never renumber or reuse them.
//
// A file is a sequence of records, each:
//
//   masked_crc32c : fixed32   CRC-32C of type byte + payload, masked
//   length        : fixed32   payload length in bytes
//   type          : uint8     RecordType
//   payload       : length bytes
//
// All integers are little-endian. The CRC is masked as LevelDB masks it, so
// that a CRC of data that itself embeds CRCs stays well distributed.

#include <cstddef>
#include <cstdint>

namespace kiln::coord::wal {

enum RecordType : uint8_t {
  // 0 is never written: a zero-filled region is never a valid record.
  kSegmentHeader = 1,   // first record of a log segment
  kTxn = 2,             // one transaction (txn.h)
  kSnapshotHeader = 3,  // first record of a snapshot
  kSnapshotNode = 4,    // one znode
  kSnapshotSession = 5, // one session
  kSnapshotFooter = 6,  // last record of a snapshot: the counts again
};

inline constexpr size_t kHeaderSize = 4 + 4 + 1;
// Larger lengths are corruption, not records (a multi is capped well below).
inline constexpr uint32_t kMaxPayload = 256u << 20;
// The file format version in segment and snapshot headers.
inline constexpr uint32_t kFormatVersion = 1;
inline constexpr char kSegmentMagic[] = "kiln-coord-log";
inline constexpr char kSnapshotMagic[] = "kiln-coord-snapshot";

inline constexpr uint32_t kMaskDelta = 0xa282ead8u;
inline uint32_t MaskCrc(uint32_t crc) { return ((crc >> 15) | (crc << 17)) + kMaskDelta; }
inline uint32_t UnmaskCrc(uint32_t masked) {
  uint32_t rot = masked - kMaskDelta;
  return (rot >> 17) | (rot << 15);
}

}  // namespace kiln::coord::wal
