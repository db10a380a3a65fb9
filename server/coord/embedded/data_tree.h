#pragma once
// The embedded store's in-memory tree: every znode by path, each with its
// data, stat and child names; the sessions and their ephemeral znodes.
//
// Thread safety: none inside. EmbeddedStore guards a DataTree with one
// shared_mutex: readers share it, Apply and snapshot bookkeeping take it
// exclusively. The snapshot iteration (SnapshotChunk) runs under the shared
// lock, concurrently with readers.
//
// Snapshots without stopping writes: BeginSnapshot marks the zxid S it
// captures; from then on, Apply saves the pre-image (the state at S) of
// every znode before it first changes it. The snapshot walks the tree in
// path order a chunk at a time, taking a znode's pre-image where there is
// one, and FinishSnapshot adds the pre-images of znodes deleted since S
// that the walk never met. The result is exactly the tree at S.

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/status.h"
#include "server/coord/coord_types.h"
#include "server/coord/embedded/txn.h"

namespace kiln::coord::embedded {

struct Node {
  std::shared_ptr<const std::string> data;  // never null; immutable, shared with Changes
  Stat stat;                                // num_children == children.size()
  std::set<std::string, std::less<>> children;
};

// A znode as a snapshot records it (children are implied by paths).
struct NodeImage {
  std::shared_ptr<const std::string> data;
  Stat stat;
};

class DataTree {
 public:
  DataTree();  // holds just the root "/"

  const Node* Find(std::string_view path) const;
  size_t node_count() const { return nodes_.size(); }
  // Session id -> timeout (ms).
  const std::map<SessionId, int64_t>& sessions() const { return sessions_; }
  // The ephemeral znodes a session owns (empty set when none).
  const std::set<std::string>& EphemeralsOf(SessionId id) const;
  Zxid last_zxid() const { return last_zxid_; }

  // Applies a prepared (or replayed) transaction. REQUIRES txn.zxid >
  // last_zxid(). Fails with kCorruption, leaving the tree partly changed,
  // only if the transaction does not fit the tree (replay of a damaged log).
  Status Apply(const Txn& txn);

  // ---- Snapshots (see the top of this file) ----
  // REQUIRES: no snapshot active. Captures the current state's zxid.
  void BeginSnapshot();
  bool snapshot_active() const { return snap_active_; }
  Zxid snapshot_zxid() const { return snap_zxid_; }
  std::map<SessionId, int64_t> snapshot_sessions() const { return snap_sessions_; }
  using EmitNode = std::function<void(const std::string& path, const NodeImage& node)>;
  // Emits up to max znodes with paths after *cursor (all when *cursor is
  // empty at first) and advances *cursor. Returns false when the walk is
  // complete. REQUIRES the shared lock; only the snapshot thread calls it.
  bool SnapshotChunk(std::string* cursor, size_t max, const EmitNode& emit) const;
  // Emits the remaining pre-images and ends the snapshot. REQUIRES the
  // exclusive lock.
  void FinishSnapshot(const EmitNode& emit);

  // ---- Loading ----
  // Adds a znode from a snapshot, in any order; Link must follow.
  void LoadNode(std::string path, NodeImage image);
  void LoadSession(SessionId id, int64_t timeout_ms) { sessions_[id] = timeout_ms; }
  // Builds child lists and the ephemeral index from the loaded paths and
  // sets last_zxid. kCorruption if a znode's parent is missing.
  Status Link(Zxid zxid);

 private:
  void SavePreimage(const std::string& path, const Node* node);
  Status ApplyCreate(const TxnOp& op, Zxid zxid, int64_t time_ms);
  Status ApplySet(const TxnOp& op, Zxid zxid, int64_t time_ms);
  Status ApplyDelete(const TxnOp& op, Zxid zxid);

  std::map<std::string, Node, std::less<>> nodes_;
  std::map<SessionId, int64_t> sessions_;
  std::unordered_map<SessionId, std::set<std::string>> ephemerals_;
  Zxid last_zxid_ = 0;

  struct Preimage {
    std::optional<NodeImage> image;  // nullopt: did not exist at the snapshot's zxid
    mutable bool emitted = false;    // touched only by the snapshot thread
  };
  bool snap_active_ = false;
  Zxid snap_zxid_ = 0;
  std::map<SessionId, int64_t> snap_sessions_;
  std::map<std::string, Preimage, std::less<>> preimages_;
};

}  // namespace kiln::coord::embedded
