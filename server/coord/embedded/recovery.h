#pragma once
// Rebuilds the embedded store's state from its directory at start-up:
//
//   DIR/snapshot.<zxid>   the newest complete snapshot (older ones are
//                         removed once a newer one is in place)
//   DIR/log.<first zxid>  log segments; each starts with a header record and
//                         holds transactions first, first+1, ... in order
//
// Recovery loads the newest snapshot, then reads every segment in order:
// transactions after the snapshot are applied; those before it only refill
// the retained change log that watch streams resume from. Zxids must follow
// each other without a gap.
//
// Damage: a torn tail of the last segment (a crash during an append; see
// wal_reader.h) is cut off and reported. Anything else (a damaged record
// with valid data after it, damage in an earlier segment, a gap, a
// transaction that does not fit the tree, a damaged snapshot) is
// kCorruption naming the file and offset: kiln refuses to start rather
// than silently lose acknowledged updates.

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"
#include "server/coord/embedded/change_log.h"
#include "server/coord/embedded/data_tree.h"

namespace kiln::coord::embedded {

// "log.00000000000000000001"
std::string SegmentFileName(Zxid first_zxid);
bool ParseSegmentFileName(const std::string& name, Zxid* first_zxid);

struct Segment {
  Zxid first_zxid = 0;
  std::string path;
  uint64_t size = 0;  // bytes of valid records (after recovery)
};

struct RecoveryReport {
  Zxid snapshot_zxid = 0;
  uint64_t snapshot_nodes = 0;
  uint64_t replayed_txns = 0;
  uint64_t log_bytes = 0;
  // Empty, or what was cut: "log.00000000000000000042: 17 bytes at offset 4096 (checksum mismatch)".
  std::string torn_tail;
  double seconds = 0;
};

struct RecoveredState {
  std::vector<Segment> segments;  // in order; the last one is appended to
  Zxid last_zxid = 0;             // the newest zxid in the log or snapshot
  RecoveryReport report;
};

// REQUIRES: tree is fresh, changes is empty. retain_txns bounds how many
// pre-snapshot transactions are decoded to refill *changes.
Result<RecoveredState> Recover(const std::string& dir, DataTree* tree, ChangeLog* changes,
                               size_t retain_txns);

}  // namespace kiln::coord::embedded
