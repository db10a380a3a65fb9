#include "server/coord/embedded/stream_hub.h"

#include <algorithm>

#include "server/coord/path.h"

namespace kiln::coord::embedded {

bool StreamHub::InScope(const std::string& path, bool recursive, const std::string& change_path) {
  if (recursive) return IsUnder(change_path, path);
  return change_path == path || ParentPath(change_path) == path;
}

void StreamHub::Add(const std::shared_ptr<StreamSub>& sub) {
  (sub->recursive ? recursive_ : flat_)[sub->path].push_back(sub);
  ++count_;
}

void StreamHub::Remove(StreamSub* sub) {
  if (sub->dead) return;
  sub->dead = true;
  --count_;
  if (publishing_) {
    need_sweep_ = true;
    return;
  }
  auto& index = sub->recursive ? recursive_ : flat_;
  auto it = index.find(sub->path);
  if (it == index.end()) return;
  auto& v = it->second;
  v.erase(std::remove_if(v.begin(), v.end(), [sub](const auto& s) { return s.get() == sub; }),
          v.end());
  if (v.empty()) index.erase(it);
}

void StreamHub::Sweep() {
  for (auto* index : {&recursive_, &flat_}) {
    for (auto it = index->begin(); it != index->end();) {
      auto& v = it->second;
      v.erase(std::remove_if(v.begin(), v.end(), [](const auto& s) { return s->dead; }), v.end());
      it = v.empty() ? index->erase(it) : std::next(it);
    }
  }
  need_sweep_ = false;
}

void StreamHub::Deliver(std::vector<std::shared_ptr<StreamSub>>& subs, const ChangePtr& c) {
  // Index loop: a handler may add streams (OpenStream from a callback runs
  // its own catch-up and Add), which can grow the vector.
  for (size_t i = 0; i < subs.size(); ++i) {
    std::shared_ptr<StreamSub> s = subs[i];
    if (s->dead) continue;
    s->handlers.on_change(c);
    s->position = c->zxid;
  }
}

void StreamHub::Publish(const std::vector<ChangePtr>& changes) {
  if (count_ == 0) return;
  publishing_ = true;
  for (const auto& c : changes) {
    std::string_view p = c->path;
    if (auto it = flat_.find(std::string(p)); it != flat_.end()) Deliver(it->second, c);
    if (p != "/")
      if (auto it = flat_.find(std::string(ParentPath(p))); it != flat_.end())
        Deliver(it->second, c);
    for (std::string_view a = p; !a.empty(); a = ParentPath(a))
      if (auto it = recursive_.find(std::string(a)); it != recursive_.end()) Deliver(it->second, c);
  }
  publishing_ = false;
  if (need_sweep_) Sweep();
}

void StreamHub::EndAll(const Status& status) {
  std::vector<std::shared_ptr<StreamSub>> all;
  for (auto* index : {&recursive_, &flat_})
    for (auto& [path, v] : *index)
      for (auto& s : v)
        if (!s->dead) all.push_back(s);
  recursive_.clear();
  flat_.clear();
  count_ = 0;
  for (auto& s : all) {
    s->dead = true;
    if (s->handlers.on_end) s->handlers.on_end(status);
  }
}

}  // namespace kiln::coord::embedded
