#pragma once
// The zookeeper backend: CoordStore over libzookeeper-mt against an
// existing ensemble (zk://host:port[,host:port]/chroot), for several kiln
// servers sharing work.
//
// Mapping:
//   - reads, persistent writes and one-shot watches go through one "main"
//     ZooKeeper session;
//   - each CoordStore session is a ZooKeeper session of its own (ephemeral
//     znodes belong to a ZooKeeper session), whose ephemeral creates run on
//     it. ZooKeeper's client keeps it alive; kiln's heartbeat contract sits
//     on top: a session without a Heartbeat for its timeout is closed, which
//     deletes its ephemerals, exactly like an embedded expiry;
//   - watch streams mirror the watched subtree with one-shot watches
//     (zk_stream.h). The 3.8 C client has no persistent watches, so a stream
//     shares ZooKeeper's weakness: changes that follow each other quickly
//     may be seen as one (the latest value), and there is no history to
//     resume from (a since older than the stream's start is kCompacted).
//
// Threads: every completion, watcher and stream handler runs on the
// ZooKeeper client's completion thread (one per ZooKeeper session). A
// reaper thread enforces heartbeat deadlines and closes sessions.
//
// Limits: ZooKeeper's server refuses packets over its jute.maxbuffer
// (default 1 MiB - 1 byte); to store kiln's largest znodes (1 MiB) run the
// ensemble with -Djute.maxbuffer=2097152 or more.

#include <memory>
#include <string>

#include "server/coord/coord_store.h"

namespace kiln::coord {

// hosts: "h:p,h:p"; chroot: "" or "/path" (created when missing).
Result<std::unique_ptr<CoordStore>> OpenZooKeeperStore(const CoordOptions& options,
                                                       const std::string& hosts,
                                                       const std::string& chroot);

}  // namespace kiln::coord
