#include "server/coord/embedded/preparer.h"

#include <fmt/format.h>

#include <algorithm>
#include <set>

#include "server/coord/path.h"

namespace kiln::coord::embedded {

void Preparer::Forget() {
  Zxid applied = tree_->last_zxid();
  while (!node_order_.empty() && node_order_.front().first <= applied) {
    auto it = nodes_.find(node_order_.front().second);
    if (it != nodes_.end() && it->second.zxid <= applied) nodes_.erase(it);
    node_order_.pop_front();
  }
  while (!session_order_.empty() && session_order_.front().first <= applied) {
    auto it = sessions_.find(session_order_.front().second);
    if (it != sessions_.end() && it->second.zxid <= applied) sessions_.erase(it);
    session_order_.pop_front();
  }
}

Preparer::NodeState Preparer::View(const std::string& path) const {
  auto it = nodes_.find(path);
  if (it != nodes_.end()) return it->second.state;
  NodeState s;
  if (const Node* n = tree_->Find(path)) {
    s.exists = true;
    s.stat = n->stat;
  }
  return s;
}

bool Preparer::SessionLive(SessionId id) const {
  auto it = sessions_.find(id);
  if (it != sessions_.end()) return it->second.live;
  return tree_->sessions().count(id) > 0;
}

void Preparer::PutNode(const std::string& path, NodeState state, Zxid zxid) {
  auto it = nodes_.find(path);
  Undo u{.is_session = false, .path = path, .id = 0, .node = std::nullopt, .session = std::nullopt};
  if (it != nodes_.end()) u.node = it->second;
  undo_.push_back(std::move(u));
  nodes_[path] = NodeEntry{state, zxid};
  node_order_.emplace_back(zxid, path);
}

void Preparer::PutSession(SessionId id, bool live, Zxid zxid) {
  auto it = sessions_.find(id);
  Undo u{.is_session = true, .path = {}, .id = id, .node = std::nullopt, .session = std::nullopt};
  if (it != sessions_.end()) u.session = it->second;
  undo_.push_back(std::move(u));
  sessions_[id] = SessionEntry{live, zxid};
  session_order_.emplace_back(zxid, id);
}

void Preparer::Rollback(size_t mark) {
  while (undo_.size() > mark) {
    Undo& u = undo_.back();
    if (u.is_session) {
      if (u.session)
        sessions_[u.id] = *u.session;
      else
        sessions_.erase(u.id);
      session_order_.pop_back();
    } else {
      if (u.node)
        nodes_[u.path] = *u.node;
      else
        nodes_.erase(u.path);
      node_order_.pop_back();
    }
    undo_.pop_back();
  }
}

namespace {
Status CheckVersion(const std::string& path, int32_t expected, int32_t actual) {
  if (expected != kAnyVersion && expected != actual)
    return {Code::kBadVersion, fmt::format("{}: expected version {}, the znode is at version {}",
                                           path, expected, actual)};
  return Status::Ok();
}
Status NoNode(const std::string& path) {
  return NotFound(fmt::format("{}: no such znode", path));
}
}  // namespace

Result<OpResult> Preparer::Create(const CreateOp& op, Zxid zxid, int64_t time_ms, Txn* txn) {
  KILN_RETURN_IF_ERROR(ValidatePath(op.path, op.sequential));
  if (op.data.size() > kMaxDataSize)
    return TooLarge(fmt::format("{}: data of {} bytes exceeds the {} byte limit", op.path,
                                op.data.size(), kMaxDataSize));
  if (op.path == "/") return AlreadyExists("/: the root znode always exists");
  std::string parent_path(ParentPath(op.path));
  NodeState parent = View(parent_path);
  if (!parent.exists)
    return NotFound(fmt::format("{}: parent {} does not exist", op.path, parent_path));
  if (parent.stat.ephemeral_owner != 0)
    return Status(
        Code::kNoChildrenForEphemerals,
        fmt::format("{}: parent {} is ephemeral and cannot have children", op.path, parent_path));
  if (op.ephemeral) {
    if (op.session == 0)
      return InvalidArgument(fmt::format("{}: an ephemeral znode needs a session", op.path));
    if (!SessionLive(op.session))
      return Status(
          Code::kSessionExpired,
          fmt::format("{}: session {} has expired or does not exist", op.path, op.session));
  }
  std::string path = op.path;
  // ZooKeeper numbers sequential children by how many children the parent
  // ever had created (its cversion counts deletes too: creates are
  // (cversion + num_children) / 2).
  if (op.sequential) path += SequenceSuffix((parent.stat.cversion + parent.stat.num_children) / 2);
  if (View(path).exists) return AlreadyExists(fmt::format("{}: znode already exists", path));

  NodeState node;
  node.exists = true;
  node.stat.czxid = node.stat.mzxid = node.stat.pzxid = zxid;
  node.stat.ctime_ms = node.stat.mtime_ms = time_ms;
  node.stat.ephemeral_owner = op.ephemeral ? op.session : 0;
  node.stat.data_length = static_cast<int32_t>(op.data.size());
  PutNode(path, node, zxid);
  parent.stat.cversion++;
  parent.stat.pzxid = zxid;
  parent.stat.num_children++;
  PutNode(parent_path, parent, zxid);

  TxnOp t;
  t.kind = TxnOpKind::kCreate;
  t.path = path;
  t.data = std::make_shared<const std::string>(op.data);
  t.session = node.stat.ephemeral_owner;
  txn->ops.push_back(std::move(t));
  return OpResult{path, node.stat};
}

Result<OpResult> Preparer::SetData(const SetOp& op, Zxid zxid, int64_t time_ms, Txn* txn) {
  KILN_RETURN_IF_ERROR(ValidatePath(op.path));
  if (op.data.size() > kMaxDataSize)
    return TooLarge(fmt::format("{}: data of {} bytes exceeds the {} byte limit", op.path,
                                op.data.size(), kMaxDataSize));
  NodeState node = View(op.path);
  if (!node.exists) return NoNode(op.path);
  KILN_RETURN_IF_ERROR(CheckVersion(op.path, op.version, node.stat.version));
  node.stat.version++;
  node.stat.mzxid = zxid;
  node.stat.mtime_ms = time_ms;
  node.stat.data_length = static_cast<int32_t>(op.data.size());
  PutNode(op.path, node, zxid);

  TxnOp t;
  t.kind = TxnOpKind::kSet;
  t.path = op.path;
  t.data = std::make_shared<const std::string>(op.data);
  t.version = node.stat.version;
  txn->ops.push_back(std::move(t));
  return OpResult{op.path, node.stat};
}

Status Preparer::DeleteNode(const std::string& path, int32_t version, Zxid zxid, Txn* txn) {
  KILN_RETURN_IF_ERROR(ValidatePath(path));
  if (path == "/") return InvalidArgument("/: the root znode cannot be deleted");
  NodeState node = View(path);
  if (!node.exists) return NoNode(path);
  KILN_RETURN_IF_ERROR(CheckVersion(path, version, node.stat.version));
  if (node.stat.num_children != 0)
    return {Code::kNotEmpty,
            fmt::format("{}: znode has {} children", path, node.stat.num_children)};
  std::string parent_path(ParentPath(path));
  NodeState parent = View(parent_path);
  PutNode(path, NodeState{}, zxid);
  parent.stat.cversion++;
  parent.stat.pzxid = zxid;
  parent.stat.num_children--;
  PutNode(parent_path, parent, zxid);

  TxnOp t;
  t.kind = TxnOpKind::kDelete;
  t.path = path;
  txn->ops.push_back(std::move(t));
  return Status::Ok();
}

Result<OpResult> Preparer::PrepareOp(const Op& op, Zxid zxid, int64_t time_ms, Txn* txn) {
  if (auto* c = std::get_if<CreateOp>(&op)) return Create(*c, zxid, time_ms, txn);
  if (auto* s = std::get_if<SetOp>(&op)) return SetData(*s, zxid, time_ms, txn);
  if (auto* d = std::get_if<DeleteOp>(&op)) {
    KILN_RETURN_IF_ERROR(DeleteNode(d->path, d->version, zxid, txn));
    return OpResult{d->path, Stat{}};
  }
  const auto& check = std::get<CheckOp>(op);
  KILN_RETURN_IF_ERROR(ValidatePath(check.path));
  NodeState node = View(check.path);
  if (!node.exists) return NoNode(check.path);
  KILN_RETURN_IF_ERROR(CheckVersion(check.path, check.version, node.stat.version));
  return OpResult{check.path, Stat{}};
}

Result<MultiResult> Preparer::PrepareMulti(const std::vector<Op>& ops, int64_t time_ms, bool single,
                                           Txn* txn) {
  Zxid zxid = next_zxid_;
  txn->zxid = zxid;
  txn->time_ms = time_ms;
  txn->ops.clear();
  size_t mark = undo_.size();
  MultiResult out;
  out.results.reserve(ops.size());
  for (size_t i = 0; i < ops.size(); ++i) {
    auto r = PrepareOp(ops[i], zxid, time_ms, txn);
    if (!r.ok()) {
      Rollback(mark);
      undo_.resize(mark);
      txn->ops.clear();
      txn->zxid = 0;
      if (single) return r.status();
      return Status(r.status().code(), fmt::format("op {} ({} {}): {}", i, OpName(ops[i]),
                                                   OpPath(ops[i]), r.status().message()));
    }
    out.results.push_back(std::move(*r));
  }
  undo_.clear();
  if (txn->ops.empty()) {
    txn->zxid = 0;  // only checks: nothing to log
  } else {
    out.zxid = zxid;
    ++next_zxid_;
  }
  return out;
}

Result<SessionInfo> Preparer::PrepareCreateSession(std::chrono::milliseconds timeout,
                                                   int64_t time_ms, Txn* txn) {
  // The session id is the zxid that creates it: unique, never reused, and
  // durable without a separate counter.
  Zxid zxid = next_zxid_++;
  txn->zxid = zxid;
  txn->time_ms = time_ms;
  txn->ops.clear();
  TxnOp t;
  t.kind = TxnOpKind::kCreateSession;
  t.session = zxid;
  t.timeout_ms = timeout.count();
  txn->ops.push_back(t);
  PutSession(zxid, true, zxid);
  undo_.clear();
  return SessionInfo{zxid, timeout};
}

Status Preparer::PrepareCloseSession(SessionId id, int64_t time_ms, Txn* txn) {
  if (!SessionLive(id))
    return {Code::kSessionExpired, fmt::format("session {} has expired or does not exist", id)};
  Zxid zxid = next_zxid_;
  txn->zxid = zxid;
  txn->time_ms = time_ms;
  txn->ops.clear();
  std::set<std::string> owned(tree_->EphemeralsOf(id).begin(), tree_->EphemeralsOf(id).end());
  for (const auto& [path, entry] : nodes_)
    if (entry.state.exists && entry.state.stat.ephemeral_owner == id) owned.insert(path);
  size_t mark = undo_.size();
  for (const auto& path : owned) {
    NodeState n = View(path);
    if (!n.exists || n.stat.ephemeral_owner != id) continue;
    Status s = DeleteNode(path, kAnyVersion, zxid, txn);
    if (!s.ok()) {  // ephemerals have no children, so this cannot happen
      Rollback(mark);
      undo_.clear();
      return Status(Code::kInternal, "closing session: " + s.message());
    }
  }
  TxnOp t;
  t.kind = TxnOpKind::kCloseSession;
  t.session = id;
  txn->ops.push_back(t);
  PutSession(id, false, zxid);
  undo_.clear();
  ++next_zxid_;
  return Status::Ok();
}

}  // namespace kiln::coord::embedded
