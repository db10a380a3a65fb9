#include "server/coord/embedded/change_log.h"

#include <algorithm>

namespace kiln::coord::embedded {
namespace {
size_t CostOf(const Change& c) { return c.path.size() + (c.data ? c.data->size() : 0) + 64; }
}  // namespace

void ChangeLog::Append(const std::vector<ChangePtr>& changes) {
  for (const auto& c : changes) {
    bytes_ += CostOf(*c);
    changes_.push_back(c);
  }
  Trim();
}

void ChangeLog::Trim() {
  while (!changes_.empty() && (changes_.size() > max_changes_ || bytes_ > max_bytes_)) {
    Zxid z = changes_.front()->zxid;
    while (!changes_.empty() && changes_.front()->zxid == z) {
      bytes_ -= CostOf(*changes_.front());
      changes_.pop_front();
    }
    trimmed_through_ = z;
  }
}

std::vector<ChangePtr> ChangeLog::After(Zxid since, size_t max) const {
  auto it = std::upper_bound(changes_.begin(), changes_.end(), since,
                             [](Zxid z, const ChangePtr& c) { return z < c->zxid; });
  std::vector<ChangePtr> out;
  for (; it != changes_.end(); ++it) {
    if (out.size() >= max && out.back()->zxid != (*it)->zxid) break;
    out.push_back(*it);
  }
  return out;
}

void ChangesOf(const Txn& txn, std::vector<ChangePtr>* out) {
  static const auto kEmpty = std::make_shared<const std::string>();
  Change* last = nullptr;  // still ours to change until the loop ends
  for (const TxnOp& op : txn.ops) {
    EventType type;
    switch (op.kind) {
      case TxnOpKind::kCreate: type = EventType::kCreated; break;
      case TxnOpKind::kSet: type = EventType::kChanged; break;
      case TxnOpKind::kDelete: type = EventType::kDeleted; break;
      default: continue;
    }
    auto c = std::make_shared<Change>();
    c->zxid = txn.zxid;
    c->type = type;
    c->path = op.path;
    if (type != EventType::kDeleted) c->data = op.data ? op.data : kEmpty;
    c->version = op.kind == TxnOpKind::kSet ? op.version : 0;
    c->ephemeral_owner = op.kind == TxnOpKind::kCreate ? op.session : 0;
    c->time_ms = txn.time_ms;
    c->txn_end = false;
    last = c.get();
    out->push_back(std::move(c));
  }
  if (last) last->txn_end = true;
}

}  // namespace kiln::coord::embedded
