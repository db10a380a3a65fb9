#include "server/coord/zk/zk_stream.h"

#include <fmt/format.h>

#include <algorithm>

#include "server/coord/invoke.h"
#include "server/coord/path.h"
#include "server/coord/zk/zk_util.h"

namespace kiln::coord::zk {

struct Mirror::Ctx {
  std::shared_ptr<Mirror> mirror;
  Kind kind;
  std::string path;
  bool initial = false;
  Ctx* watch = nullptr;  // completions: the watcher context registered with them
};

Mirror::Mirror(zhandle_t* zh, std::string path, bool recursive, Zxid since, StreamHandlers handlers)
    : zh_(zh),
      root_(std::move(path)),
      recursive_(recursive),
      since_(since),
      handlers_(std::move(handlers)) {
  position_ = std::max<Zxid>(since, 0);
}

Mirror::Ctx* Mirror::NewCtx(Kind kind, const std::string& path, bool initial) {
  auto* c = new Ctx{shared_from_this(), kind, path, initial, nullptr};
  std::lock_guard lock(mu_);
  ctxs_.insert(c);
  return c;
}

void Mirror::Forget(Ctx* c) {
  {
    std::lock_guard lock(mu_);
    ctxs_.erase(c);
  }
  delete c;
}

void Mirror::FreeContexts() {
  std::set<Ctx*> all;
  {
    std::lock_guard lock(mu_);
    all.swap(ctxs_);
  }
  // Each context holds the mirror: keep it alive while they go.
  auto self = shared_from_this();
  for (Ctx* c : all) delete c;
}

bool Mirror::ChildrenInScope(const std::string& path) const {
  return path == root_ || recursive_;
}

Status Mirror::Start(std::chrono::milliseconds timeout) {
  {
    std::lock_guard lock(mu_);
    initial_left_ = 1;
  }
  Watch(root_, true);
  std::unique_lock lock(mu_);
  if (!cv_.wait_for(lock, timeout, [&] { return initial_left_ == 0; }))
    return Unavailable(fmt::format("zookeeper: reading {} for a watch stream took over {} ms",
                                   root_, timeout.count()));
  return Status::Ok();
}

void Mirror::InitialDone() {
  {
    std::lock_guard lock(mu_);
    if (--initial_left_ != 0) return;
  }
  // Runs on the completion thread, as every Emit: release what the first
  // reads found (the catch-up) and what changed meanwhile, in zxid order.
  holding_ = false;
  if (since_ < 0) {
    // A stream from now starts at the state the first reads saw (as an
    // embedded one starts at the store's last zxid): resuming it from its
    // position must not report that state again.
    std::lock_guard lock(mu_);
    position_ = std::max(position_, seen_);
  }
  std::stable_sort(held_.begin(), held_.end(),
                   [](const ChangePtr& a, const ChangePtr& b) { return a->zxid < b->zxid; });
  std::vector<ChangePtr> held;
  held.swap(held_);
  for (auto& ch : held) {
    {
      std::lock_guard lock(mu_);
      if (dead_ || ended_) break;
      position_ = std::max(position_, ch->zxid);
    }
    Invoke("stream change", handlers_.on_change, ch);
  }
  std::lock_guard lock(mu_);
  cv_.notify_all();
}

void Mirror::Stop() {
  std::lock_guard lock(mu_);
  dead_ = true;
}

void Mirror::End(const Status& status) {
  {
    std::lock_guard lock(mu_);
    if (dead_ || ended_) return;
    ended_ = true;
  }
  Invoke("stream end", handlers_.on_end, status);
}

Zxid Mirror::position() const {
  std::lock_guard lock(mu_);
  return position_;
}

// ---- Reads and watches ------------------------------------------------------------

void Mirror::Watch(const std::string& path, bool initial) {
  // One initial unit becomes a data read plus, maybe, a children read.
  if (initial) {
    std::lock_guard lock(mu_);
    initial_left_ += ChildrenInScope(path) ? 1 : 0;
  }
  ReadData(path, initial);
  if (ChildrenInScope(path)) ReadChildren(path, initial);
}

void Mirror::ReadData(const std::string& path, bool initial) {
  Ctx* w = NewCtx(Kind::kData, path, initial);
  Ctx* c = NewCtx(Kind::kData, path, initial);
  c->watch = w;
  int rc = zoo_awget(zh_, path.c_str(), &Mirror::OnWatch, w, &Mirror::OnData, c);
  if (rc != ZOK) {
    Forget(w);
    OnData(rc, nullptr, 0, nullptr, c);
  }
}

void Mirror::ReadChildren(const std::string& path, bool initial) {
  Ctx* w = NewCtx(Kind::kChildren, path, initial);
  Ctx* c = NewCtx(Kind::kChildren, path, initial);
  c->watch = w;
  int rc = zoo_awget_children2(zh_, path.c_str(), &Mirror::OnWatch, w, &Mirror::OnChildren, c);
  if (rc != ZOK) {
    Forget(w);
    OnChildren(rc, nullptr, nullptr, c);
  }
}

void Mirror::ArmExists(const std::string& path) {
  Ctx* w = NewCtx(Kind::kExists, path, false);
  Ctx* c = NewCtx(Kind::kExists, path, false);
  c->watch = w;
  int rc = zoo_awexists(zh_, path.c_str(), &Mirror::OnWatch, w, &Mirror::OnExists, c);
  if (rc != ZOK) {
    Forget(w);
    Forget(c);
  }
}

void Mirror::OnWatch(zhandle_t* /*zh*/, int type, int state, const char* /*path*/, void* ctx) {
  auto* c = static_cast<Ctx*>(ctx);
  std::shared_ptr<Mirror> m = c->mirror;  // c may be freed inside
  StoreCallbackScope scope;
  m->HandleWatch(c, type, state);
}

void Mirror::OnData(int rc, const char* value, int len, const ::Stat* stat, const void* ctx) {
  auto* c = static_cast<Ctx*>(const_cast<void*>(ctx));
  std::shared_ptr<Mirror> m = c->mirror;
  // A failed read registered no watch.
  if (rc != ZOK && c->watch) m->Forget(c->watch);
  StoreCallbackScope scope;
  m->HandleData(c, rc, value && len > 0 ? std::string(value, static_cast<size_t>(len)) : "", stat);
  m->Forget(c);
}

void Mirror::OnChildren(int rc, const struct String_vector* names, const ::Stat* stat,
                        const void* ctx) {
  auto* c = static_cast<Ctx*>(const_cast<void*>(ctx));
  std::shared_ptr<Mirror> m = c->mirror;
  if (rc != ZOK && c->watch) m->Forget(c->watch);
  std::set<std::string> set;
  if (rc == ZOK && names)
    for (int i = 0; i < names->count; ++i) set.insert(names->data[i]);
  StoreCallbackScope scope;
  m->HandleChildren(c, rc, std::move(set), stat);
  m->Forget(c);
}

void Mirror::OnExists(int rc, const ::Stat* /*stat*/, const void* ctx) {
  auto* c = static_cast<Ctx*>(const_cast<void*>(ctx));
  std::shared_ptr<Mirror> m = c->mirror;
  if (rc != ZOK && rc != ZNONODE && c->watch) m->Forget(c->watch);
  // The root came back before the watch was armed: read it now.
  if (rc == ZOK) {
    bool dead;
    {
      std::lock_guard lock(m->mu_);
      dead = m->dead_;
    }
    if (!dead && !m->known_.count(c->path)) m->Watch(c->path, false);
  }
  m->Forget(c);
}

// ---- Reactions ----------------------------------------------------------------------

void Mirror::HandleWatch(Ctx* c, int type, int state) {
  std::string path = c->path;
  Kind kind = c->kind;
  if (type == ZOO_SESSION_EVENT) {
    // Reconnects re-arm watches by themselves. An expired session's are
    // gone: the store moves the stream to a mirror on its new session.
    (void)state;
    return;  // the context stays registered until the client closes
  }
  Forget(c);
  {
    std::lock_guard lock(mu_);
    if (dead_ || ended_) return;
  }
  if (type == ZOO_CHANGED_EVENT && kind == Kind::kData) {
    ReadData(path, false);
  } else if (type == ZOO_CHILD_EVENT) {
    ReadChildren(path, false);
  } else if (type == ZOO_DELETED_EVENT) {
    if (known_.count(path)) RemoveSubtree(path, 0);
    if (path == root_ && kind != Kind::kChildren) ArmExists(root_);
  } else if (type == ZOO_CREATED_EVENT) {
    Watch(path, false);
  }
}

void Mirror::HandleData(Ctx* c, int rc, std::string data, const ::Stat* stat) {
  bool dead;
  {
    std::lock_guard lock(mu_);
    dead = dead_ || ended_;
  }
  if (!dead) {
    if (rc == ZOK && stat) {
      seen_ = std::max({seen_, stat->mzxid, stat->pzxid});
      auto it = known_.find(c->path);
      if (it == known_.end()) {
        known_[c->path].version = stat->version;
        // The initial read only learns what exists (and, for a catch-up,
        // reports what changed after since); later ones announce.
        if (!c->initial)
          Emit(EventType::kCreated, c->path, std::move(data), stat->version, stat->ephemeralOwner,
               stat->czxid, stat->ctime);
        else if (since_ >= 0 && stat->czxid > since_)
          Emit(EventType::kCreated, c->path, std::move(data), stat->version, stat->ephemeralOwner,
               stat->czxid, stat->ctime);
        else if (since_ >= 0 && stat->mzxid > since_)
          Emit(EventType::kChanged, c->path, std::move(data), stat->version, 0, stat->mzxid,
               stat->mtime);
      } else if (it->second.version != stat->version) {
        it->second.version = stat->version;
        Emit(EventType::kChanged, c->path, std::move(data), stat->version, 0, stat->mzxid,
             stat->mtime);
      }
    } else if (rc == ZNONODE) {
      if (known_.count(c->path)) RemoveSubtree(c->path, 0);
      if (c->path == root_) ArmExists(root_);
    }
  }
  if (c->initial) InitialDone();
}

void Mirror::HandleChildren(Ctx* c, int rc, std::set<std::string> names, const ::Stat* stat) {
  bool dead;
  {
    std::lock_guard lock(mu_);
    dead = dead_ || ended_;
  }
  if (!dead && rc == ZOK) {
    if (stat) seen_ = std::max({seen_, stat->mzxid, stat->pzxid});
    std::set<std::string> old = known_[c->path].children;
    known_[c->path].children = names;
    for (const auto& n : old)
      if (!names.count(n)) RemoveSubtree(JoinPath(c->path, n), stat ? stat->pzxid : 0);
    for (const auto& n : names)
      if (!old.count(n)) {
        if (c->initial) {
          std::lock_guard lock(mu_);
          ++initial_left_;
        }
        Watch(JoinPath(c->path, n), c->initial);
      }
  }
  if (c->initial) InitialDone();
}

void Mirror::RemoveSubtree(const std::string& path, Zxid zxid) {
  // Deepest first, as the deletes must have happened.
  std::vector<std::string> doomed;
  if (known_.count(path)) doomed.push_back(path);
  std::string prefix = path == "/" ? "/" : path + "/";
  for (auto it = known_.lower_bound(prefix);
       it != known_.end() && it->first.compare(0, prefix.size(), prefix) == 0; ++it)
    if (it->first != path) doomed.push_back(it->first);
  for (auto it = doomed.rbegin(); it != doomed.rend(); ++it) {
    known_.erase(*it);
    Emit(EventType::kDeleted, *it, "", 0, 0, zxid, 0);
  }
  std::string parent(ParentPath(path));
  if (auto p = known_.find(parent); p != known_.end())
    p->second.children.erase(std::string(BaseName(path)));
}

void Mirror::Emit(EventType type, const std::string& path, std::string data, int32_t version,
                  SessionId owner, Zxid zxid, int64_t time_ms) {
  bool in_scope = recursive_ ? IsUnder(path, root_) : (path == root_ || ParentPath(path) == root_);
  if (!in_scope) return;
  auto ch = std::make_shared<Change>();
  {
    std::lock_guard lock(mu_);
    if (dead_ || ended_) return;
    // A delete learned from a watch has no zxid of its own: it happened
    // after everything seen so far.
    ch->zxid = zxid ? zxid : std::max(position_, seen_);
    if (!holding_) position_ = std::max(position_, zxid);
  }
  ch->type = type;
  ch->path = path;
  if (type != EventType::kDeleted) ch->data = std::make_shared<const std::string>(std::move(data));
  ch->version = version;
  ch->ephemeral_owner = owner;
  ch->time_ms = time_ms;
  if (holding_) return held_.push_back(std::move(ch));
  Invoke("stream change", handlers_.on_change, ChangePtr(std::move(ch)));
}

}  // namespace kiln::coord::zk
