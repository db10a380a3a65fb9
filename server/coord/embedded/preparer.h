#pragma once
// Turns requests into resolved transactions (txn.h), checking them against
// the tree as it will be once every transaction prepared so far is applied.
//
// Writes are prepared, logged and fsync'd in a pipeline: while one batch
// waits for its fsync, the next is already being prepared. A request must
// therefore be checked against the tree plus the effects of transactions
// that are prepared but not yet applied. The preparer keeps those effects
// in an overlay (ZooKeeper's "outstanding changes"): the post-state of
// every znode and session a pending transaction touched, tagged with the
// zxid that last touched it. Entries are dropped once the tree has applied
// that zxid, so the overlay stays as small as the pipeline.
//
// Thread safety: one thread (the store's log thread) uses a Preparer. It
// reads the tree, so the caller holds the tree's shared lock.

#include <chrono>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/status.h"
#include "server/coord/coord_types.h"
#include "server/coord/embedded/data_tree.h"
#include "server/coord/embedded/txn.h"

namespace kiln::coord::embedded {

class Preparer {
 public:
  // next_zxid: the zxid the next transaction gets.
  Preparer(const DataTree* tree, Zxid next_zxid) : tree_(tree), next_zxid_(next_zxid) {}

  // Drops overlay entries the tree has applied (tree->last_zxid()).
  void Forget();

  // Prepares a multi (Create/Set/Delete are multis of one op). On success
  // *txn holds the transaction (no ops and zxid 0 when the multi has only
  // checks or is empty) and the result. single: name errors without the
  // "op N" prefix.
  Result<MultiResult> PrepareMulti(const std::vector<Op>& ops, int64_t time_ms, bool single,
                                   Txn* txn);
  Result<SessionInfo> PrepareCreateSession(std::chrono::milliseconds timeout, int64_t time_ms,
                                           Txn* txn);
  // Deletes the session's ephemeral znodes and the session.
  Status PrepareCloseSession(SessionId id, int64_t time_ms, Txn* txn);

  Zxid next_zxid() const { return next_zxid_; }
  size_t overlay_size() const { return nodes_.size() + sessions_.size(); }

 private:
  struct NodeState {
    bool exists = false;
    Stat stat;
  };
  // The znode as pending transactions leave it.
  NodeState View(const std::string& path) const;
  bool SessionLive(SessionId id) const;
  void PutNode(const std::string& path, NodeState state, Zxid zxid);
  void PutSession(SessionId id, bool live, Zxid zxid);

  Result<OpResult> PrepareOp(const Op& op, Zxid zxid, int64_t time_ms, Txn* txn);
  Result<OpResult> Create(const CreateOp& op, Zxid zxid, int64_t time_ms, Txn* txn);
  Result<OpResult> SetData(const SetOp& op, Zxid zxid, int64_t time_ms, Txn* txn);
  Status DeleteNode(const std::string& path, int32_t version, Zxid zxid, Txn* txn);

  // Undo log for a multi that fails half way.
  void Rollback(size_t mark);

  const DataTree* tree_;
  Zxid next_zxid_;

  struct NodeEntry {
    NodeState state;
    Zxid zxid;
  };
  struct SessionEntry {
    bool live;
    Zxid zxid;
  };
  std::unordered_map<std::string, NodeEntry> nodes_;
  std::unordered_map<SessionId, SessionEntry> sessions_;
  // Touches in zxid order, for Forget.
  std::deque<std::pair<Zxid, std::string>> node_order_;
  std::deque<std::pair<Zxid, SessionId>> session_order_;

  struct Undo {
    bool is_session;
    std::string path;
    SessionId id;
    std::optional<NodeEntry> node;
    std::optional<SessionEntry> session;
  };
  std::vector<Undo> undo_;
};

}  // namespace kiln::coord::embedded
