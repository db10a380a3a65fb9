#include "server/coord/embedded/watch_manager.h"

#include "server/coord/path.h"

namespace kiln::coord::embedded {

void WatchManager::AddData(const std::string& path, Watcher w) {
  std::lock_guard lock(mu_);
  data_[path].push_back(std::move(w));
  ++count_;
}

void WatchManager::AddChild(const std::string& path, Watcher w) {
  std::lock_guard lock(mu_);
  child_[path].push_back(std::move(w));
  ++count_;
}

size_t WatchManager::size() const {
  std::lock_guard lock(mu_);
  return count_;
}

void WatchManager::Take(std::unordered_map<std::string, std::vector<Watcher>>& table,
                        const std::string& path, EventType type, Zxid zxid,
                        std::vector<FiredWatch>* out) {
  auto it = table.find(path);
  if (it == table.end()) return;
  for (auto& w : it->second) out->emplace_back(std::move(w), WatchEvent{type, path, zxid});
  count_ -= it->second.size();
  table.erase(it);
}

void WatchManager::Collect(const Txn& txn, std::vector<FiredWatch>* out) {
  std::lock_guard lock(mu_);
  if (count_ == 0) return;
  // ZooKeeper's rules: a create fires the znode's data watches (exists) and
  // the parent's child watches; a set fires data watches; a delete fires
  // the znode's data and child watches and the parent's child watches.
  for (const TxnOp& op : txn.ops) {
    switch (op.kind) {
      case TxnOpKind::kCreate:
        Take(data_, op.path, EventType::kCreated, txn.zxid, out);
        Take(child_, std::string(ParentPath(op.path)), EventType::kChildren, txn.zxid, out);
        break;
      case TxnOpKind::kSet:
        Take(data_, op.path, EventType::kChanged, txn.zxid, out);
        break;
      case TxnOpKind::kDelete:
        Take(data_, op.path, EventType::kDeleted, txn.zxid, out);
        Take(child_, op.path, EventType::kDeleted, txn.zxid, out);
        Take(child_, std::string(ParentPath(op.path)), EventType::kChildren, txn.zxid, out);
        break;
      default:
        break;
    }
  }
}

void WatchManager::CollectAll(std::vector<FiredWatch>* out) {
  std::lock_guard lock(mu_);
  for (auto* table : {&data_, &child_})
    for (auto& [path, ws] : *table)
      for (auto& w : ws) out->emplace_back(std::move(w), WatchEvent{EventType::kNotWatching, path, 0});
  data_.clear();
  child_.clear();
  count_ = 0;
}

}  // namespace kiln::coord::embedded
