#pragma once
// Snapshots of the embedded store's tree: one file per snapshot,
// "snapshot.<zxid>", holding exactly the tree and sessions as of that zxid,
// in the record framing of wal_format.h (grammar in docs/COORD_WAL.md).
//
// A snapshot is written while writes go on (DataTree's pre-images make it
// exact), to a temporary name, fsync'd and renamed into place, so a file
// with the final name is always complete: any damage in it is corruption.

#include <cstdint>
#include <functional>
#include <shared_mutex>
#include <string>

#include "common/status.h"
#include "server/coord/embedded/data_tree.h"

namespace kiln::coord::embedded {

// "snapshot.00000000000000001234"
std::string SnapshotFileName(Zxid zxid);
// Parses a snapshot file name; false for anything else.
bool ParseSnapshotFileName(const std::string& name, Zxid* zxid);

struct SnapshotStats {
  Zxid zxid = 0;
  uint64_t nodes = 0;
  uint64_t bytes = 0;
};

// Writes a snapshot of *tree into dir. Takes mu exclusively only to begin
// and to finish; walks the tree under the shared lock a chunk at a time, so
// readers and writers keep going.
Result<SnapshotStats> WriteSnapshot(const std::string& dir, DataTree* tree,
                                    std::shared_mutex* mu);

// Loads a snapshot file into an empty tree. kCorruption naming the file and
// offset on any damage.
Result<SnapshotStats> LoadSnapshot(const std::string& path, DataTree* tree);

}  // namespace kiln::coord::embedded
