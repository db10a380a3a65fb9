#include "server/coord/zk/zk_store.h"

#include <fmt/format.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <shared_mutex>
#include <thread>

#include "common/log.h"
#include "server/coord/invoke.h"
#include "server/coord/path.h"
#include "server/coord/zk/zk_stream.h"
#include "server/coord/zk/zk_util.h"

namespace kiln::coord {
namespace zk {
namespace {

using Clock = std::chrono::steady_clock;

EventType FromZkEvent(int type) {
  if (type == ZOO_CREATED_EVENT) return EventType::kCreated;
  if (type == ZOO_DELETED_EVENT) return EventType::kDeleted;
  if (type == ZOO_CHANGED_EVENT) return EventType::kChanged;
  if (type == ZOO_CHILD_EVENT) return EventType::kChildren;
  return EventType::kNotWatching;
}

int CreateMode(bool ephemeral, bool sequential) {
  if (ephemeral) return sequential ? ZOO_EPHEMERAL_SEQUENTIAL : ZOO_EPHEMERAL;
  return sequential ? ZOO_PERSISTENT_SEQUENTIAL : ZOO_PERSISTENT;
}

Status CheckData(const std::string& path, const std::string& data) {
  if (data.size() > kMaxDataSize)
    return TooLarge(fmt::format("{}: data of {} bytes exceeds the {} byte limit", path, data.size(),
                                kMaxDataSize));
  return Status::Ok();
}

}  // namespace

class ZkStore;

// A one-shot watcher registered with the client. Freed when it fires, when
// the read that would have registered it fails, or when the store closes.
struct WatchCtx {
  ZkStore* store;
  Watcher fn;
  bool fired = false;
};

// A watch stream's current mirror. When the main session expires, the
// store replaces the mirror with one on the new session that catches up
// from the old one's position.
struct StreamSlot {
  std::mutex mu;
  std::shared_ptr<Mirror> mirror;
  bool stopped = false;

  std::shared_ptr<Mirror> Get() {
    std::lock_guard lock(mu);
    return mirror;
  }
};

class ZkStream : public WatchStream {
 public:
  ZkStream(ZkStore* store, std::shared_ptr<StreamSlot> slot)
      : store_(store), slot_(std::move(slot)) {}
  ~ZkStream() override;
  Zxid position() const override { return slot_->Get()->position(); }

 private:
  ZkStore* store_;
  std::shared_ptr<StreamSlot> slot_;
};

class ZkStore final : public CoordStore {
 public:
  ZkStore(const CoordOptions& o, std::string hosts, std::string chroot)
      : opts_(o), hosts_(std::move(hosts)), chroot_(std::move(chroot)) {}
  ~ZkStore() override;
  Status Init();

  void CreateAsync(CreateOp op, Callback<CreateResult> done) override;
  void SetAsync(SetOp op, Callback<SetResult> done) override;
  void DeleteAsync(DeleteOp op, StatusCallback done) override;
  void MultiAsync(std::vector<Op> ops, Callback<MultiResult> done) override;
  void GetAsync(std::string path, Watcher watch, Callback<GetResult> done) override;
  void ExistsAsync(std::string path, Watcher watch, Callback<std::optional<Stat>> done) override;
  void ChildrenAsync(std::string path, Watcher watch, Callback<ChildrenResult> done) override;
  void CreateSessionAsync(std::chrono::milliseconds timeout, Callback<SessionInfo> done) override;
  void HeartbeatAsync(SessionId id, StatusCallback done) override;
  void CloseSessionAsync(SessionId id, StatusCallback done) override;
  Result<std::unique_ptr<WatchStream>> OpenStream(const StreamOptions& options,
                                                  StreamHandlers handlers) override;
  Zxid LastZxid() const override { return last_zxid_.load(); }
  // A resume from any zxid is a catch-up (zk_stream.h).
  Zxid OldestResumableZxid() const override { return 0; }
  std::string backend() const override { return "zookeeper"; }
  Json Describe() const override;
  std::vector<std::pair<std::string, double>> Counters() const override;

  void Saw(Zxid z) {
    Zxid cur = last_zxid_.load();
    while (z > cur && !last_zxid_.compare_exchange_weak(cur, z)) {
    }
  }
  void FreeWatch(WatchCtx* w) {
    {
      std::lock_guard lock(watch_mu_);
      watches_.erase(w);
    }
    delete w;
  }
  void StopStream(const std::shared_ptr<StreamSlot>& slot) {
    std::shared_ptr<Mirror> m;
    {
      std::lock_guard lock(slot->mu);
      slot->stopped = true;
      m = slot->mirror;
    }
    m->Stop();
    std::lock_guard lock(streams_mu_);
    streams_.erase(slot);
    // Its watches may still be registered with the client: their contexts
    // are freed when the client closes.
    retired_.insert(m);
  }

 private:
  struct Session {
    std::unique_ptr<Handle> handle;
    std::chrono::milliseconds timeout{0};
    Clock::time_point deadline;
    bool closing = false;
  };

  // Runs fn(zh) on the main session's handle, which cannot be replaced
  // (and closed) meanwhile. fn must not block or call back into the store.
  template <typename F>
  int OnMain(F fn) {
    std::shared_lock lock(main_mu_);
    return fn(main_->zh());
  }
  // Connects the main session (creating the chroot when missing); its
  // expiry wakes the keeper.
  Result<std::unique_ptr<Handle>> ConnectMain(uint64_t generation);
  // The keeper thread: replaces an expired main session.
  void KeeperLoop();
  void ReplaceMain();
  // Moves a stream onto the new main session: a mirror there catches up
  // from the old one's position (zk_stream.h).
  void ResumeStream(const std::shared_ptr<StreamSlot>& slot, zhandle_t* zh);
  WatchCtx* NewWatch(Watcher fn);
  // The handle an operation runs on: main, or the session's for ephemerals.
  Result<std::shared_ptr<Session>> SessionFor(SessionId id);
  void Reap(std::shared_ptr<Session> s, StatusCallback done);
  void ReaperLoop();
  static void OnWatch(zhandle_t* zh, int type, int state, const char* path, void* ctx);

  const CoordOptions opts_;
  const std::string hosts_, chroot_;
  // The main session; replaced (under the exclusive lock) by the keeper
  // when it expires. Calls on it hold the shared lock (OnMain).
  mutable std::shared_mutex main_mu_;
  std::unique_ptr<Handle> main_;
  std::atomic<uint64_t> main_generation_{0};
  std::atomic<Zxid> last_zxid_{0};
  std::atomic<bool> main_expired_{false};

  std::mutex keeper_mu_;
  std::condition_variable keeper_cv_;
  bool keeper_wanted_ = false;
  bool keeper_stop_ = false;
  std::thread keeper_;

  mutable std::mutex sessions_mu_;
  std::map<SessionId, std::shared_ptr<Session>> sessions_;

  mutable std::mutex watch_mu_;
  std::set<WatchCtx*> watches_;

  mutable std::mutex streams_mu_;
  std::set<std::shared_ptr<StreamSlot>> streams_;
  std::set<std::shared_ptr<Mirror>> retired_;

  // The reaper closes sessions (zookeeper_close blocks) and opens new ones.
  std::mutex reaper_mu_;
  std::condition_variable reaper_cv_;
  std::deque<std::function<void()>> reaper_jobs_;
  bool stop_ = false;
  std::thread reaper_;

  std::atomic<uint64_t> expired_{0}, sessions_opened_{0}, main_reconnects_{0};
};

// ---- Lifecycle ------------------------------------------------------------------

Result<std::unique_ptr<Handle>> ZkStore::ConnectMain(uint64_t generation) {
  if (!chroot_.empty()) {
    // The chroot must exist before a client can use it.
    KILN_ASSIGN_OR_RETURN(auto root, Handle::Connect(hosts_, std::chrono::seconds(10),
                                                     opts_.connect_timeout, nullptr));
    for (size_t pos = 1; pos <= chroot_.size(); ++pos) {
      if (pos != chroot_.size() && chroot_[pos] != '/') continue;
      std::string prefix = chroot_.substr(0, pos);
      int rc = zoo_create(root->zh(), prefix.c_str(), nullptr, -1, &ZOO_OPEN_ACL_UNSAFE,
                          ZOO_PERSISTENT, nullptr, 0);
      if (rc != ZOK && rc != ZNODEEXISTS)
        return FromRc(rc, prefix).WithContext("creating the zookeeper chroot");
    }
  }
  return Handle::Connect(
      hosts_ + chroot_, std::chrono::seconds(30), opts_.connect_timeout,
      [this, generation](int state) {
        // Runs on the handle's completion thread: hand
        // the reconnect to the keeper.
        if (state != ZOO_EXPIRED_SESSION_STATE || generation != main_generation_.load()) return;
        main_expired_ = true;
        log::Warn("coord", "ZooKeeper session expired; opening a new one", {{"hosts", hosts_}});
        std::lock_guard lock(keeper_mu_);
        keeper_wanted_ = true;
        keeper_cv_.notify_one();
      });
}

Status ZkStore::Init() {
  KILN_ASSIGN_OR_RETURN(main_, ConnectMain(main_generation_.load()));
  reaper_ = std::thread([this] { ReaperLoop(); });
  keeper_ = std::thread([this] { KeeperLoop(); });
  log::Info("coord", "zookeeper store open",
            {{"hosts", hosts_},
             {"chroot", chroot_.empty() ? "/" : chroot_},
             {"session", main_->session_id()}});
  return Status::Ok();
}

ZkStore::~ZkStore() {
  {
    std::lock_guard lock(keeper_mu_);
    keeper_stop_ = true;
  }
  keeper_cv_.notify_all();
  if (keeper_.joinable()) keeper_.join();
  {
    std::lock_guard lock(reaper_mu_);
    stop_ = true;
  }
  reaper_cv_.notify_all();
  if (reaper_.joinable()) reaper_.join();
  // Closing a session deletes its ephemerals: the ZooKeeper backend cannot
  // leave them to expire the way the embedded store does.
  std::map<SessionId, std::shared_ptr<Session>> sessions;
  {
    std::lock_guard lock(sessions_mu_);
    sessions.swap(sessions_);
  }
  sessions.clear();
  std::set<std::shared_ptr<Mirror>> streams, retired;
  {
    std::lock_guard lock(streams_mu_);
    for (const auto& slot : streams_) streams.insert(slot->Get());
    retired = retired_;
  }
  // Pending completions run now, with ZCLOSING; after this no callback can.
  main_.reset();
  for (const auto& m : streams) {
    m->End(Unavailable("the coordination store is closing"));
    m->FreeContexts();
  }
  for (const auto& m : retired) m->FreeContexts();
  std::set<WatchCtx*> watches;
  {
    std::lock_guard lock(watch_mu_);
    watches.swap(watches_);
  }
  for (WatchCtx* w : watches) {
    if (!w->fired) Invoke("watcher", w->fn, WatchEvent{EventType::kNotWatching, "", 0});
    delete w;
  }
}

void ZkStore::ReaperLoop() {
  std::unique_lock lock(reaper_mu_);
  while (!stop_) {
    reaper_cv_.wait_for(lock, std::chrono::milliseconds(50),
                        [&] { return stop_ || !reaper_jobs_.empty(); });
    while (!reaper_jobs_.empty()) {
      auto job = std::move(reaper_jobs_.front());
      reaper_jobs_.pop_front();
      lock.unlock();
      job();
      lock.lock();
    }
    if (stop_) break;
    // Sessions whose owner stopped heartbeating expire as embedded ones do.
    lock.unlock();
    std::vector<std::shared_ptr<Session>> expired;
    {
      std::lock_guard slock(sessions_mu_);
      auto now = Clock::now();
      for (auto it = sessions_.begin(); it != sessions_.end();) {
        if (it->second->deadline <= now || it->second->closing) {
          expired.push_back(it->second);
          it = sessions_.erase(it);
        } else {
          ++it;
        }
      }
    }
    for (auto& s : expired) {
      ++expired_;
      log::Info("coord", "session expired", {{"session", s->handle->session_id()}});
      s->handle.reset();  // closes the ZooKeeper session: its ephemerals go
    }
    lock.lock();
  }
}

void ZkStore::KeeperLoop() {
  std::unique_lock lock(keeper_mu_);
  for (;;) {
    keeper_cv_.wait(lock, [&] { return keeper_stop_ || keeper_wanted_; });
    if (keeper_stop_) return;
    keeper_wanted_ = false;
    lock.unlock();
    ReplaceMain();
    lock.lock();
  }
}

void ZkStore::ReplaceMain() {
  // Until a new session is up, calls fail as ZooKeeper fails them on an
  // expired session; retry while the ensemble is unreachable.
  std::unique_ptr<Handle> fresh;
  for (int attempt = 1;; ++attempt) {
    auto h = ConnectMain(main_generation_.load() + 1);
    if (h.ok()) {
      fresh = std::move(*h);
      break;
    }
    log::Warn("coord", "ZooKeeper: no new session yet",
              {{"hosts", hosts_}, {"attempt", attempt}, {"error", h.status().message()}});
    std::unique_lock lock(keeper_mu_);
    if (keeper_cv_.wait_for(lock, std::chrono::seconds(1), [&] { return keeper_stop_; })) return;
  }
  std::unique_ptr<Handle> old;
  std::vector<std::shared_ptr<StreamSlot>> slots;
  zhandle_t* zh = fresh->zh();
  {
    // Streams opened from now on use the new handle; the ones open now
    // are moved below.
    std::unique_lock lock(main_mu_);
    old = std::move(main_);
    main_ = std::move(fresh);
    ++main_generation_;
    std::lock_guard slock(streams_mu_);
    slots.assign(streams_.begin(), streams_.end());
  }
  main_expired_ = false;
  ++main_reconnects_;
  log::Info("coord", "ZooKeeper: new main session",
            {{"hosts", hosts_}, {"session", main_->session_id()}, {"streams", slots.size()}});
  for (const auto& slot : slots) ResumeStream(slot, zh);
  // Closing the expired handle runs its pending completions (ZCLOSING);
  // then nothing can call the contexts of mirrors that used it.
  zhandle_t* old_zh = old->zh();
  old.reset();
  std::set<std::shared_ptr<Mirror>> done;
  {
    std::lock_guard lock(streams_mu_);
    for (auto it = retired_.begin(); it != retired_.end();) {
      if ((*it)->zh() == old_zh) {
        done.insert(*it);
        it = retired_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (const auto& m : done) m->FreeContexts();
}

void ZkStore::ResumeStream(const std::shared_ptr<StreamSlot>& slot, zhandle_t* zh) {
  std::shared_ptr<Mirror> old, fresh;
  {
    std::lock_guard lock(slot->mu);
    if (slot->stopped) return;
    old = slot->mirror;
    old->Stop();
    fresh = std::make_shared<Mirror>(zh, old->root(), old->recursive(), old->position(),
                                     old->handlers());
    slot->mirror = fresh;
  }
  {
    std::lock_guard lock(streams_mu_);
    retired_.insert(old);
  }
  Status started = fresh->Start(opts_.connect_timeout);
  if (!started.ok()) {
    // The stream's owner reconnects and resumes from its position.
    fresh->End(started);
    fresh->Stop();
  }
}

// ---- Writes ---------------------------------------------------------------------

Result<std::shared_ptr<ZkStore::Session>> ZkStore::SessionFor(SessionId id) {
  std::lock_guard lock(sessions_mu_);
  auto it = sessions_.find(id);
  if (it == sessions_.end() || it->second->closing)
    return Status(Code::kSessionExpired,
                  fmt::format("session {} has expired or does not exist", id));
  return it->second;
}

namespace {

struct CreateCall {
  ZkStore* store;
  std::string path;
  Callback<CreateResult> done;
  std::shared_ptr<void> keep;  // the session whose handle runs the call
  bool on_session = false;
};

void OnCreated(int rc, const char* name, const ::Stat* stat, const void* data) {
  std::unique_ptr<CreateCall> c(static_cast<CreateCall*>(const_cast<void*>(data)));
  StoreCallbackScope scope;
  if (rc != ZOK) {
    Status s = FromRc(rc, c->path);
    if (rc == ZNONODE)
      s = NotFound(fmt::format("{}: parent {} does not exist", c->path, ParentPath(c->path)));
    if (c->on_session && (rc == ZCLOSING || rc == ZSESSIONEXPIRED))
      s = Status(Code::kSessionExpired, c->path + ": the session has expired");
    return Invoke("completion", c->done, Result<CreateResult>(s));
  }
  Stat st = FromStat(*stat);
  c->store->Saw(st.czxid);
  Invoke("completion", c->done, Result<CreateResult>(CreateResult{name, st, st.czxid}));
}

}  // namespace

void ZkStore::CreateAsync(CreateOp op, Callback<CreateResult> done) {
  if (Status s = ValidatePath(op.path, op.sequential); !s.ok()) return done(s);
  if (Status s = CheckData(op.path, op.data); !s.ok()) return done(s);
  if (op.path == "/") return done(AlreadyExists("/: the root znode always exists"));
  zhandle_t* zh = nullptr;  // the main session's
  auto call =
      std::make_unique<CreateCall>(CreateCall{this, op.path, std::move(done), nullptr, false});
  if (op.ephemeral) {
    if (op.session == 0)
      return call->done(InvalidArgument(op.path + ": an ephemeral znode needs a session"));
    auto s = SessionFor(op.session);
    if (!s.ok())
      return call->done(Status(s.status().code(), op.path + ": " + s.status().message()));
    zh = (*s)->handle->zh();
    call->keep = *s;
    call->on_session = true;
  }
  CreateCall* raw = call.release();
  auto create = [&](zhandle_t* h) {
    return zoo_acreate2(h, op.path.c_str(), op.data.data(), static_cast<int>(op.data.size()),
                        &ZOO_OPEN_ACL_UNSAFE, CreateMode(op.ephemeral, op.sequential), OnCreated,
                        raw);
  };
  int rc = zh ? create(zh) : OnMain(create);
  if (rc != ZOK) OnCreated(rc, nullptr, nullptr, raw);
}

void ZkStore::SetAsync(SetOp op, Callback<SetResult> done) {
  if (Status s = ValidatePath(op.path); !s.ok()) return done(s);
  if (Status s = CheckData(op.path, op.data); !s.ok()) return done(s);
  struct Call {
    ZkStore* store;
    std::string path;
    int32_t version;
    Callback<SetResult> done;
  };
  auto* call = new Call{this, op.path, op.version, std::move(done)};
  auto cb = [](int rc, const ::Stat* stat, const void* data) {
    std::unique_ptr<Call> c(static_cast<Call*>(const_cast<void*>(data)));
    StoreCallbackScope scope;
    if (rc != ZOK) {
      Status s = FromRc(rc, c->path);
      if (rc == ZBADVERSION)
        s = Status(Code::kBadVersion,
                   fmt::format("{}: expected version {}, the znode is at another version", c->path,
                               c->version));
      return Invoke("completion", c->done, Result<SetResult>(s));
    }
    Stat st = FromStat(*stat);
    c->store->Saw(st.mzxid);
    Invoke("completion", c->done, Result<SetResult>(SetResult{st, st.mzxid}));
  };
  int rc = OnMain([&](zhandle_t* zh) {
    return zoo_aset(zh, op.path.c_str(), op.data.data(), static_cast<int>(op.data.size()),
                    op.version, cb, call);
  });
  if (rc != ZOK) cb(rc, nullptr, call);
}

void ZkStore::DeleteAsync(DeleteOp op, StatusCallback done) {
  if (Status s = ValidatePath(op.path); !s.ok()) return done(s);
  if (op.path == "/") return done(InvalidArgument("/: the root znode cannot be deleted"));
  struct Call {
    std::string path;
    StatusCallback done;
  };
  auto* call = new Call{op.path, std::move(done)};
  auto cb = [](int rc, const void* data) {
    std::unique_ptr<Call> c(static_cast<Call*>(const_cast<void*>(data)));
    StoreCallbackScope scope;
    Invoke("completion", c->done, FromRc(rc, c->path));
  };
  int rc =
      OnMain([&](zhandle_t* zh) { return zoo_adelete(zh, op.path.c_str(), op.version, cb, call); });
  if (rc != ZOK) cb(rc, call);
}

namespace {

// A multi in flight: the ops and every buffer the client writes into live
// here until the completion.
struct MultiCall {
  ZkStore* store;
  std::vector<Op> ops;
  std::vector<zoo_op_t> zops;
  std::vector<zoo_op_result_t> results;
  std::vector<std::string> path_bufs;
  std::vector<::Stat> stats;
  Callback<MultiResult> done;
  std::shared_ptr<void> keep;
  zhandle_t* zh = nullptr;
  // After success: stats of created znodes, read one by one.
  MultiResult out;
  size_t stat_reads_left = 0;
};

void FinishMulti(MultiCall* c) {
  std::unique_ptr<MultiCall> owned(c);
  for (const auto& r : c->out.results)
    if (r.stat.czxid || r.stat.mzxid) {
      if (!c->out.zxid) c->out.zxid = std::max(r.stat.mzxid, r.stat.czxid);
    }
  c->store->Saw(c->out.zxid);
  Invoke("completion", c->done, Result<MultiResult>(std::move(c->out)));
}

void OnMultiDone(int rc, const void* data) {
  auto* c = static_cast<MultiCall*>(const_cast<void*>(data));
  StoreCallbackScope scope;
  if (rc != ZOK) {
    std::unique_ptr<MultiCall> owned(c);
    // The first operation that failed for its own reason (the others
    // report ZRUNTIMEINCONSISTENCY: rolled back).
    for (size_t i = 0; i < c->results.size(); ++i) {
      int err = c->results[i].err;
      if (err != ZOK && err != ZRUNTIMEINCONSISTENCY) {
        Status s = FromRc(err, OpPath(c->ops[i]));
        return Invoke("completion", c->done,
                      Result<MultiResult>(
                          Status(s.code(), fmt::format("op {} ({} {}): {}", i, OpName(c->ops[i]),
                                                       OpPath(c->ops[i]), s.message()))));
      }
    }
    return Invoke("completion", c->done, Result<MultiResult>(FromRc(rc, "multi")));
  }
  c->out.results.resize(c->ops.size());
  std::vector<size_t> creates;
  for (size_t i = 0; i < c->ops.size(); ++i) {
    OpResult& r = c->out.results[i];
    r.path = OpPath(c->ops[i]);
    if (std::holds_alternative<CreateOp>(c->ops[i])) {
      r.path = c->path_bufs[i].c_str();
      creates.push_back(i);
    } else if (std::holds_alternative<SetOp>(c->ops[i])) {
      r.stat = FromStat(c->stats[i]);
    }
  }
  // ZooKeeper's multi does not return the stat of a created znode: read it.
  // czxid is final; the rest is as of the read.
  if (creates.empty()) return FinishMulti(c);
  c->stat_reads_left = creates.size();
  for (size_t i : creates) {
    struct Read {
      MultiCall* call;
      size_t index;
    };
    auto* read = new Read{c, i};
    auto cb = [](int erc, const ::Stat* stat, const void* d) {
      std::unique_ptr<Read> rd(static_cast<Read*>(const_cast<void*>(d)));
      if (erc == ZOK && stat) rd->call->out.results[rd->index].stat = FromStat(*stat);
      if (--rd->call->stat_reads_left == 0) FinishMulti(rd->call);
    };
    if (zoo_aexists(c->zh, c->out.results[i].path.c_str(), 0, cb, read) != ZOK)
      cb(ZCLOSING, nullptr, read);
  }
}

}  // namespace

void ZkStore::MultiAsync(std::vector<Op> ops, Callback<MultiResult> done) {
  if (ops.empty()) return done(MultiResult{});
  auto call = std::make_unique<MultiCall>();
  call->store = this;
  SessionId session = 0;
  for (size_t i = 0; i < ops.size(); ++i) {
    auto fail = [&](const Status& s) {
      done(Status(s.code(), fmt::format("op {} ({} {}): {}", i, OpName(ops[i]), OpPath(ops[i]),
                                        s.message())));
    };
    if (auto* c = std::get_if<CreateOp>(&ops[i])) {
      if (Status s = ValidatePath(c->path, c->sequential); !s.ok()) return fail(s);
      if (Status s = CheckData(c->path, c->data); !s.ok()) return fail(s);
      if (c->ephemeral) {
        if (c->session == 0) return fail(InvalidArgument("an ephemeral znode needs a session"));
        if (session != 0 && session != c->session)
          return fail(InvalidArgument("a multi may create ephemerals of one session only"));
        session = c->session;
      }
    } else {
      if (Status s = ValidatePath(OpPath(ops[i])); !s.ok()) return fail(s);
      if (auto* s = std::get_if<SetOp>(&ops[i]))
        if (Status st = CheckData(s->path, s->data); !st.ok()) return fail(st);
    }
  }
  if (session != 0) {
    auto s = SessionFor(session);
    if (!s.ok()) return done(s.status());
    call->zh = (*s)->handle->zh();
    call->keep = *s;
  }
  call->ops = std::move(ops);
  size_t n = call->ops.size();
  call->zops.resize(n);
  call->results.resize(n);
  call->path_bufs.resize(n);
  call->stats.resize(n);
  for (size_t i = 0; i < n; ++i) {
    Op& op = call->ops[i];
    if (auto* c = std::get_if<CreateOp>(&op)) {
      call->path_bufs[i].assign(c->path.size() + 32, '\0');
      zoo_create_op_init(&call->zops[i], c->path.c_str(), c->data.data(),
                         static_cast<int>(c->data.size()), &ZOO_OPEN_ACL_UNSAFE,
                         CreateMode(c->ephemeral, c->sequential), call->path_bufs[i].data(),
                         static_cast<int>(call->path_bufs[i].size()));
    } else if (auto* s = std::get_if<SetOp>(&op)) {
      zoo_set_op_init(&call->zops[i], s->path.c_str(), s->data.data(),
                      static_cast<int>(s->data.size()), s->version, &call->stats[i]);
    } else if (auto* d = std::get_if<DeleteOp>(&op)) {
      zoo_delete_op_init(&call->zops[i], d->path.c_str(), d->version);
    } else {
      auto& k = std::get<CheckOp>(op);
      zoo_check_op_init(&call->zops[i], k.path.c_str(), k.version);
    }
  }
  call->done = std::move(done);
  MultiCall* raw = call.release();
  auto multi = [&](zhandle_t* zh) {
    raw->zh = zh;
    return zoo_amulti(zh, static_cast<int>(n), raw->zops.data(), raw->results.data(), OnMultiDone,
                      raw);
  };
  int rc = raw->zh ? multi(raw->zh) : OnMain(multi);
  if (rc != ZOK) {
    for (auto& r : raw->results) r.err = ZOK;
    OnMultiDone(rc, raw);
  }
}

// ---- Reads and watches ------------------------------------------------------------

WatchCtx* ZkStore::NewWatch(Watcher fn) {
  if (!fn) return nullptr;
  auto* w = new WatchCtx{this, std::move(fn)};
  std::lock_guard lock(watch_mu_);
  watches_.insert(w);
  return w;
}

void ZkStore::OnWatch(zhandle_t* /*zh*/, int type, int state, const char* path, void* ctx) {
  auto* w = static_cast<WatchCtx*>(ctx);
  StoreCallbackScope scope;
  if (type == ZOO_SESSION_EVENT) {
    // Disconnects heal by themselves (the client re-registers watches); an
    // expired session's watches are gone for good.
    if (state == ZOO_EXPIRED_SESSION_STATE && !w->fired) {
      w->fired = true;
      Invoke("watcher", w->fn, WatchEvent{EventType::kNotWatching, path ? path : "", 0});
    }
    return;
  }
  if (!w->fired) {
    w->fired = true;
    Invoke("watcher", w->fn, WatchEvent{FromZkEvent(type), path ? path : "", 0});
  }
  w->store->FreeWatch(w);
}

void ZkStore::GetAsync(std::string path, Watcher watch, Callback<GetResult> done) {
  if (Status s = ValidatePath(path); !s.ok()) return done(s);
  struct Call {
    ZkStore* store;
    std::string path;
    WatchCtx* watch;
    Callback<GetResult> done;
  };
  WatchCtx* w = NewWatch(std::move(watch));
  auto* call = new Call{this, path, w, std::move(done)};
  auto cb = [](int rc, const char* value, int len, const ::Stat* stat, const void* data) {
    std::unique_ptr<Call> c(static_cast<Call*>(const_cast<void*>(data)));
    StoreCallbackScope scope;
    if (rc != ZOK) {
      if (c->watch) c->store->FreeWatch(c->watch);  // not registered
      return Invoke("completion", c->done, Result<GetResult>(FromRc(rc, c->path)));
    }
    Stat st = FromStat(*stat);
    c->store->Saw(std::max(st.mzxid, st.pzxid));
    GetResult g{value && len > 0 ? std::string(value, static_cast<size_t>(len)) : "", st,
                std::max(st.mzxid, st.pzxid)};
    Invoke("completion", c->done, Result<GetResult>(std::move(g)));
  };
  int rc = OnMain([&](zhandle_t* zh) {
    return zoo_awget(zh, path.c_str(), w ? &ZkStore::OnWatch : nullptr, w, cb, call);
  });
  if (rc != ZOK) cb(rc, nullptr, 0, nullptr, call);
}

void ZkStore::ExistsAsync(std::string path, Watcher watch, Callback<std::optional<Stat>> done) {
  if (Status s = ValidatePath(path); !s.ok()) return done(s);
  struct Call {
    ZkStore* store;
    std::string path;
    WatchCtx* watch;
    Callback<std::optional<Stat>> done;
  };
  WatchCtx* w = NewWatch(std::move(watch));
  auto* call = new Call{this, path, w, std::move(done)};
  auto cb = [](int rc, const ::Stat* stat, const void* data) {
    std::unique_ptr<Call> c(static_cast<Call*>(const_cast<void*>(data)));
    StoreCallbackScope scope;
    if (rc == ZNONODE)
      return Invoke("completion", c->done, Result<std::optional<Stat>>(std::nullopt));
    if (rc != ZOK) {
      if (c->watch) c->store->FreeWatch(c->watch);
      return Invoke("completion", c->done, Result<std::optional<Stat>>(FromRc(rc, c->path)));
    }
    Stat st = FromStat(*stat);
    c->store->Saw(std::max(st.mzxid, st.pzxid));
    Invoke("completion", c->done, Result<std::optional<Stat>>(std::optional<Stat>(st)));
  };
  int rc = OnMain([&](zhandle_t* zh) {
    return zoo_awexists(zh, path.c_str(), w ? &ZkStore::OnWatch : nullptr, w, cb, call);
  });
  if (rc != ZOK) cb(rc, nullptr, call);
}

void ZkStore::ChildrenAsync(std::string path, Watcher watch, Callback<ChildrenResult> done) {
  if (Status s = ValidatePath(path); !s.ok()) return done(s);
  struct Call {
    ZkStore* store;
    std::string path;
    WatchCtx* watch;
    Callback<ChildrenResult> done;
  };
  WatchCtx* w = NewWatch(std::move(watch));
  auto* call = new Call{this, path, w, std::move(done)};
  auto cb = [](int rc, const struct String_vector* names, const ::Stat* stat, const void* data) {
    std::unique_ptr<Call> c(static_cast<Call*>(const_cast<void*>(data)));
    StoreCallbackScope scope;
    if (rc != ZOK) {
      if (c->watch) c->store->FreeWatch(c->watch);
      return Invoke("completion", c->done, Result<ChildrenResult>(FromRc(rc, c->path)));
    }
    ChildrenResult out;
    for (int i = 0; names && i < names->count; ++i) out.children.emplace_back(names->data[i]);
    std::sort(out.children.begin(), out.children.end());
    out.stat = FromStat(*stat);
    out.zxid = std::max(out.stat.mzxid, out.stat.pzxid);
    c->store->Saw(out.zxid);
    Invoke("completion", c->done, Result<ChildrenResult>(std::move(out)));
  };
  int rc = OnMain([&](zhandle_t* zh) {
    return zoo_awget_children2(zh, path.c_str(), w ? &ZkStore::OnWatch : nullptr, w, cb, call);
  });
  if (rc != ZOK) cb(rc, nullptr, nullptr, call);
}

// ---- Sessions -------------------------------------------------------------------

void ZkStore::CreateSessionAsync(std::chrono::milliseconds timeout, Callback<SessionInfo> done) {
  timeout = std::clamp(timeout, opts_.min_session_timeout, opts_.max_session_timeout);
  // Connecting blocks: do it on the reaper thread.
  std::lock_guard lock(reaper_mu_);
  if (stop_) return done(Unavailable("the coordination store is closing"));
  reaper_jobs_.push_back([this, timeout, done = std::move(done)] {
    auto session = std::make_shared<Session>();
    auto h = Handle::Connect(hosts_ + chroot_, timeout, opts_.connect_timeout,
                             [this, session_ptr = std::weak_ptr<Session>(session)](int state) {
                               if (state != ZOO_EXPIRED_SESSION_STATE) return;
                               if (auto s = session_ptr.lock()) {
                                 std::lock_guard slock(sessions_mu_);
                                 s->closing = true;  // the reaper cleans it up
                               }
                             });
    StoreCallbackScope scope;
    if (!h.ok()) return Invoke("completion", done, Result<SessionInfo>(h.status()));
    session->handle = std::move(*h);
    // ZooKeeper may grant another timeout than asked; heartbeats follow it.
    session->timeout = session->handle->timeout();
    session->deadline = Clock::now() + session->timeout;
    SessionId id = session->handle->session_id();
    {
      std::lock_guard slock(sessions_mu_);
      sessions_[id] = session;
    }
    ++sessions_opened_;
    Invoke("completion", done, Result<SessionInfo>(SessionInfo{id, session->timeout}));
  });
  reaper_cv_.notify_one();
}

void ZkStore::HeartbeatAsync(SessionId id, StatusCallback done) {
  bool ok;
  {
    std::lock_guard lock(sessions_mu_);
    auto it = sessions_.find(id);
    ok = it != sessions_.end() && !it->second->closing && it->second->deadline > Clock::now();
    if (ok) it->second->deadline = Clock::now() + it->second->timeout;
  }
  if (ok) return done(Status::Ok());
  done(Status(Code::kSessionExpired, fmt::format("session {} has expired or does not exist", id)));
}

void ZkStore::CloseSessionAsync(SessionId id, StatusCallback done) {
  std::shared_ptr<Session> s;
  {
    std::lock_guard lock(sessions_mu_);
    auto it = sessions_.find(id);
    if (it != sessions_.end() && !it->second->closing) {
      s = it->second;
      sessions_.erase(it);
    }
  }
  if (!s)
    return done(
        Status(Code::kSessionExpired, fmt::format("session {} has expired or does not exist", id)));
  Reap(std::move(s), std::move(done));
}

void ZkStore::Reap(std::shared_ptr<Session> s, StatusCallback done) {
  std::lock_guard lock(reaper_mu_);
  reaper_jobs_.push_back([s = std::move(s), done = std::move(done)]() mutable {
    s->handle.reset();  // zookeeper_close: the server deletes the ephemerals first
    StoreCallbackScope scope;
    Invoke("completion", done, Status::Ok());
  });
  reaper_cv_.notify_one();
}

// ---- Streams ----------------------------------------------------------------------

ZkStream::~ZkStream() {
  store_->StopStream(slot_);
}

Result<std::unique_ptr<WatchStream>> ZkStore::OpenStream(const StreamOptions& options,
                                                         StreamHandlers handlers) {
  KILN_RETURN_IF_ERROR(ValidatePath(options.path));
  if (!handlers.on_change) return InvalidArgument("a watch stream needs an on_change handler");
  if (InStoreCallback())
    return FailedPrecondition("a zookeeper watch stream cannot be opened from a store callback");
  // No history to replay: a resume is a catch-up from the znodes' current
  // state (zk_stream.h says what it cannot report).
  auto slot = std::make_shared<StreamSlot>();
  {
    // Registered under the main lock: either the keeper moves this stream
    // to a new session, or the stream starts on the new one.
    std::shared_lock lock(main_mu_);
    slot->mirror = std::make_shared<Mirror>(main_->zh(), options.path, options.recursive,
                                            options.since, std::move(handlers));
    std::lock_guard slock(streams_mu_);
    streams_.insert(slot);
  }
  Status started = slot->Get()->Start(opts_.connect_timeout);
  if (!started.ok()) {
    StopStream(slot);
    return started;
  }
  return std::unique_ptr<WatchStream>(new ZkStream(this, slot));
}

// ---- State ------------------------------------------------------------------------

Json ZkStore::Describe() const {
  Json j;
  {
    std::shared_lock lock(main_mu_);
    j = {{"backend", "zookeeper"},
         {"url", "zk://" + hosts_ + chroot_},
         {"zxid", last_zxid_.load()},
         {"state", main_expired_                                   ? "expired"
                   : zoo_state(main_->zh()) == ZOO_CONNECTED_STATE ? "ok"
                                                                   : "connecting"},
         {"session", main_->session_id()},
         {"sessions_replaced", main_reconnects_.load()}};
  }
  {
    std::lock_guard lock(sessions_mu_);
    j["sessions"] = sessions_.size();
  }
  {
    std::lock_guard lock(watch_mu_);
    j["watches"] = watches_.size();
  }
  {
    std::lock_guard lock(streams_mu_);
    j["streams"] = streams_.size();
  }
  if (main_expired_)
    j["error"] = "the ZooKeeper session expired; opening a new one (calls fail until it is up)";
  return j;
}

std::vector<std::pair<std::string, double>> ZkStore::Counters() const {
  return {
      {"kiln_coord_sessions_expired_total", static_cast<double>(expired_.load())},
      {"kiln_coord_sessions_opened_total", static_cast<double>(sessions_opened_.load())},
      {"kiln_coord_zk_main_sessions_replaced_total", static_cast<double>(main_reconnects_.load())}};
}

}  // namespace zk

Result<std::unique_ptr<CoordStore>> OpenZooKeeperStore(const CoordOptions& options,
                                                       const std::string& hosts,
                                                       const std::string& chroot) {
  auto store = std::make_unique<zk::ZkStore>(options, hosts, chroot);
  KILN_RETURN_IF_ERROR(store->Init());
  return std::unique_ptr<CoordStore>(std::move(store));
}

}  // namespace kiln::coord
