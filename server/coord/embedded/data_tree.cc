#include "server/coord/embedded/data_tree.h"

#include <fmt/format.h>

#include "server/coord/path.h"

namespace kiln::coord::embedded {
namespace {
const std::set<std::string> kNoEphemerals;
const auto kEmptyData = std::make_shared<const std::string>();
}  // namespace

DataTree::DataTree() {
  Node root;
  root.data = kEmptyData;
  nodes_.emplace("/", std::move(root));
}

const Node* DataTree::Find(std::string_view path) const {
  auto it = nodes_.find(path);
  return it == nodes_.end() ? nullptr : &it->second;
}

const std::set<std::string>& DataTree::EphemeralsOf(SessionId id) const {
  auto it = ephemerals_.find(id);
  return it == ephemerals_.end() ? kNoEphemerals : it->second;
}

void DataTree::SavePreimage(const std::string& path, const Node* node) {
  if (!snap_active_ || preimages_.count(path)) return;
  Preimage p;
  if (node) p.image = NodeImage{node->data, node->stat};
  preimages_.emplace(path, std::move(p));
}

Status DataTree::ApplyCreate(const TxnOp& op, Zxid zxid, int64_t time_ms) {
  std::string parent_path(ParentPath(op.path));
  auto parent = nodes_.find(parent_path);
  if (parent == nodes_.end() || nodes_.count(op.path))
    return Corruption(fmt::format("zxid {}: create {} does not fit the tree", zxid, op.path));
  SavePreimage(op.path, nullptr);
  SavePreimage(parent->first, &parent->second);
  Node n;
  n.data = op.data ? op.data : kEmptyData;
  n.stat.czxid = n.stat.mzxid = n.stat.pzxid = zxid;
  n.stat.ctime_ms = n.stat.mtime_ms = time_ms;
  n.stat.ephemeral_owner = op.session;
  n.stat.data_length = static_cast<int32_t>(n.data->size());
  nodes_.emplace(op.path, std::move(n));
  Node& p = parent->second;
  p.children.emplace(BaseName(op.path));
  p.stat.cversion++;
  p.stat.pzxid = zxid;
  p.stat.num_children = static_cast<int32_t>(p.children.size());
  if (op.session != 0) ephemerals_[op.session].insert(op.path);
  return Status::Ok();
}

Status DataTree::ApplySet(const TxnOp& op, Zxid zxid, int64_t time_ms) {
  auto it = nodes_.find(op.path);
  if (it == nodes_.end())
    return Corruption(fmt::format("zxid {}: set {} of a missing znode", zxid, op.path));
  SavePreimage(it->first, &it->second);
  Node& n = it->second;
  n.data = op.data ? op.data : kEmptyData;
  n.stat.mzxid = zxid;
  n.stat.mtime_ms = time_ms;
  n.stat.version = op.version;
  n.stat.data_length = static_cast<int32_t>(n.data->size());
  return Status::Ok();
}

Status DataTree::ApplyDelete(const TxnOp& op, Zxid zxid) {
  auto it = nodes_.find(op.path);
  if (it == nodes_.end() || !it->second.children.empty() || op.path == "/")
    return Corruption(fmt::format("zxid {}: delete {} does not fit the tree", zxid, op.path));
  auto parent = nodes_.find(ParentPath(op.path));
  if (parent == nodes_.end())
    return Corruption(fmt::format("zxid {}: delete {} without a parent", zxid, op.path));
  SavePreimage(it->first, &it->second);
  SavePreimage(parent->first, &parent->second);
  SessionId owner = it->second.stat.ephemeral_owner;
  if (owner != 0) {
    auto e = ephemerals_.find(owner);
    if (e != ephemerals_.end()) {
      e->second.erase(op.path);
      if (e->second.empty()) ephemerals_.erase(e);
    }
  }
  Node& p = parent->second;
  p.children.erase(p.children.find(BaseName(op.path)));
  p.stat.cversion++;
  p.stat.pzxid = zxid;
  p.stat.num_children = static_cast<int32_t>(p.children.size());
  nodes_.erase(it);
  return Status::Ok();
}

Status DataTree::Apply(const Txn& txn) {
  if (txn.zxid <= last_zxid_)
    return Corruption(fmt::format("zxid {} after zxid {}", txn.zxid, last_zxid_));
  for (const TxnOp& op : txn.ops) {
    Status s;
    switch (op.kind) {
      case TxnOpKind::kCreate: s = ApplyCreate(op, txn.zxid, txn.time_ms); break;
      case TxnOpKind::kSet: s = ApplySet(op, txn.zxid, txn.time_ms); break;
      case TxnOpKind::kDelete: s = ApplyDelete(op, txn.zxid); break;
      case TxnOpKind::kCreateSession: sessions_[op.session] = op.timeout_ms; break;
      case TxnOpKind::kCloseSession: sessions_.erase(op.session); break;
    }
    if (!s.ok()) return s;
  }
  last_zxid_ = txn.zxid;
  return Status::Ok();
}

void DataTree::BeginSnapshot() {
  snap_active_ = true;
  snap_zxid_ = last_zxid_;
  snap_sessions_ = sessions_;
  preimages_.clear();
}

bool DataTree::SnapshotChunk(std::string* cursor, size_t max, const EmitNode& emit) const {
  auto it = cursor->empty() ? nodes_.begin() : nodes_.upper_bound(*cursor);
  for (size_t n = 0; n < max && it != nodes_.end(); ++n, ++it) {
    auto pre = preimages_.find(it->first);
    if (pre != preimages_.end()) {
      if (!pre->second.emitted && pre->second.image) emit(it->first, *pre->second.image);
      pre->second.emitted = true;
    } else {
      emit(it->first, NodeImage{it->second.data, it->second.stat});
    }
    *cursor = it->first;
  }
  return it != nodes_.end();
}

void DataTree::FinishSnapshot(const EmitNode& emit) {
  for (auto& [path, pre] : preimages_)
    if (!pre.emitted && pre.image) emit(path, *pre.image);
  preimages_.clear();
  snap_sessions_.clear();
  snap_active_ = false;
}

void DataTree::LoadNode(std::string path, NodeImage image) {
  Node n;
  n.data = image.data ? image.data : kEmptyData;
  n.stat = image.stat;
  // Snapshots list znodes mostly in path order: the hint makes those inserts O(1).
  nodes_.insert_or_assign(nodes_.end(), std::move(path), std::move(n));
}

Status DataTree::Link(Zxid zxid) {
  // Paths sort parents before children, so one pass in map order links
  // every znode to a parent that is already known. The hint makes each
  // insert into the parent's (sorted) child set O(1) in the common case.
  for (auto& [path, node] : nodes_) {
    node.children.clear();
    node.stat.num_children = 0;
  }
  for (auto& [path, node] : nodes_) {
    if (path == "/") continue;
    auto parent = nodes_.find(ParentPath(path));
    if (parent == nodes_.end())
      return Corruption(fmt::format("snapshot: znode {} has no parent", path));
    if (parent->second.stat.ephemeral_owner != 0)
      return Corruption(fmt::format("snapshot: znode {} is a child of an ephemeral", path));
    auto& kids = parent->second.children;
    kids.emplace_hint(kids.end(), BaseName(path));
    parent->second.stat.num_children = static_cast<int32_t>(kids.size());
    if (node.stat.ephemeral_owner != 0) ephemerals_[node.stat.ephemeral_owner].insert(path);
  }
  last_zxid_ = zxid;
  return Status::Ok();
}

}  // namespace kiln::coord::embedded
