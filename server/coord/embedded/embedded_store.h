#pragma once
// The embedded backend: the whole tree in memory, made durable by a
// write-ahead log in its directory (docs/COORD_WAL.md).
//
// The write path is a three-stage pipeline on two threads:
//
//   caller ──► intake queue ──► log thread: prepare (check against tree +
//              pending overlay, preparer.h), frame, one write(2) per batch
//          ──► commit thread: one fdatasync for everything written so far
//              (group commit), apply to the tree, fire watches and streams,
//              then run completions in submission order
//
// Why no reply can be sent before its fsync: the commit thread applies a
// batch to the tree only after the fsync covering it returned, and runs the
// completions after that. A reader therefore never sees an update that a
// crash could still take back, and an acknowledged update is on disk.
// While one batch waits for its fsync the log thread already prepares and
// writes the next, so one fsync serves every update that arrived during the
// previous one.
//
// If a write or an fsync fails, what reached the disk is unknown: the store
// answers that batch with the error and refuses every later write with
// kIoError until it is reopened (LevelDB does the same). Reads keep working.
//
// Snapshots are written by a background thread after each log segment fills
// up, without stopping writes (data_tree.h), and then old segments and
// snapshots are removed, keeping the segments that hold the changes watch
// streams can still resume from.

#include <memory>
#include <string>

#include "server/coord/coord_store.h"
#include "server/coord/embedded/file_env.h"

namespace kiln::coord {

// Opens (recovering, or creating) an embedded store in dir. env: the file
// seam for fault-injection tests; nullptr for the real file system.
Result<std::unique_ptr<CoordStore>> OpenEmbeddedStore(const CoordOptions& options,
                                                      const std::string& dir,
                                                      embedded::FileEnv* env = nullptr);

}  // namespace kiln::coord
