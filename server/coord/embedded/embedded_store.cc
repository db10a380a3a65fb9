#include "server/coord/embedded/embedded_store.h"

#include <dirent.h>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <shared_mutex>
#include <thread>

#include "common/file_util.h"
#include "common/log.h"
#include "server/coord/embedded/change_log.h"
#include "server/coord/embedded/data_tree.h"
#include "server/coord/embedded/preparer.h"
#include "server/coord/embedded/recovery.h"
#include "server/coord/embedded/session_tracker.h"
#include "server/coord/embedded/snapshot.h"
#include "server/coord/embedded/stream_hub.h"
#include "server/coord/embedded/wal_format.h"
#include "server/coord/embedded/wal_writer.h"
#include "server/coord/embedded/watch_manager.h"
#include "server/coord/invoke.h"
#include "server/coord/path.h"

namespace kiln::coord {
namespace embedded {
namespace {

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The store whose tree lock the current thread holds exclusively (the
// commit thread while it applies and notifies). Reads and stream calls made
// from watchers on that thread must not lock again.
thread_local const void* t_exclusive_owner = nullptr;

Status Closing() {
  return Unavailable("the coordination store is closing");
}

}  // namespace

class EmbeddedStore;

// Lets a WatchStream outlive its store safely: the store clears `store`
// when it closes, after ending every stream.
struct StoreAlive {
  std::mutex mu;
  EmbeddedStore* store = nullptr;
};

class EmbeddedStream : public WatchStream {
 public:
  EmbeddedStream(std::shared_ptr<StoreAlive> alive, std::shared_ptr<StreamSub> sub)
      : alive_(std::move(alive)), sub_(std::move(sub)) {}
  ~EmbeddedStream() override;
  Zxid position() const override;

 private:
  std::shared_ptr<StoreAlive> alive_;
  std::shared_ptr<StreamSub> sub_;
};

class EmbeddedStore final : public CoordStore {
 public:
  EmbeddedStore(const CoordOptions& options, std::string dir, FileEnv* env)
      : opts_(options),
        dir_(std::move(dir)),
        env_(env),
        changes_(options.retain_changes, kRetainBytes),
        alive_(std::make_shared<StoreAlive>()) {
    alive_->store = this;
  }
  ~EmbeddedStore() override;

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
  Zxid LastZxid() const override { return applied_zxid_.load(); }
  Zxid OldestResumableZxid() const override;
  std::string backend() const override { return "embedded"; }
  Json Describe() const override;
  std::vector<std::pair<std::string, double>> Counters() const override;

  void RemoveStream(StreamSub* sub);

 protected:
  // Reads never wait here: they complete on the calling thread.
  bool MayWaitHere(bool is_write) const override { return !is_write || !InStoreCallback(); }

 private:
  // Retained change data beyond this many bytes is trimmed (see ChangeLog).
  static constexpr size_t kRetainBytes = 256u << 20;

  struct Request {
    enum class Kind { kWrite, kCreateSession, kCloseSession } kind = Kind::kWrite;
    std::vector<Op> ops;
    bool single = false;
    Callback<MultiResult> on_multi;
    std::chrono::milliseconds timeout{0};
    Callback<SessionInfo> on_session;
    SessionId session = 0;
    StatusCallback on_status;
  };
  // A prepared request in the pipeline. txn.zxid == 0: nothing to log.
  struct Entry {
    Txn txn;
    std::function<void(const Status& durable)> complete;
    std::shared_ptr<AppendFile> file;
  };

  // Locks the tree unless this thread already holds it exclusively.
  class ReadLock {
   public:
    explicit ReadLock(const EmbeddedStore* s)
        : mu_(t_exclusive_owner == s ? nullptr : &s->tree_mu_) {
      if (mu_) mu_->lock_shared();
    }
    ~ReadLock() {
      if (mu_) mu_->unlock_shared();
    }

   private:
    std::shared_mutex* mu_;
  };
  class WriteLock {
   public:
    explicit WriteLock(const EmbeddedStore* s)
        : mu_(t_exclusive_owner == s ? nullptr : &s->tree_mu_), store_(s) {
      if (mu_) {
        mu_->lock();
        t_exclusive_owner = s;
      }
    }
    ~WriteLock() {
      if (mu_) {
        t_exclusive_owner = nullptr;
        mu_->unlock();
      }
    }

   private:
    std::shared_mutex* mu_;
    const EmbeddedStore* store_;
  };

  void Submit(Request r);
  static void Fail(Request& r, const Status& s);
  Entry Prepare(Request& r, int64_t now_ms);
  void LogLoop();
  void CommitLoop();
  void ExpiryLoop();
  void SnapshotLoop();
  Status Roll();
  Status StartSegment(Zxid first_zxid);
  void Prune(Zxid snapshot_zxid);
  Status Failure() const {
    std::lock_guard lock(fail_mu_);
    return failed_;
  }
  void SetFailed(const Status& s);
  // Records how long an fsync took; a slow one is logged, since every
  // update in its batch (and behind it) waits that long for its answer.
  void NoteSyncTime(std::chrono::steady_clock::duration took, size_t waiting);

  const CoordOptions opts_;
  const std::string dir_;
  FileEnv* env_;
  std::optional<FileLock> dir_lock_;

  // The tree, the change log and the streams; see the top of this file for
  // who locks what.
  mutable std::shared_mutex tree_mu_;
  DataTree tree_;
  ChangeLog changes_;
  StreamHub streams_;
  WatchManager watches_;
  SessionTracker sessions_;
  std::atomic<Zxid> applied_zxid_{0};
  std::shared_ptr<StoreAlive> alive_;

  // Log thread only.
  std::unique_ptr<Preparer> preparer_;
  uint64_t segment_size_ = 0;

  std::mutex intake_mu_;
  std::condition_variable intake_cv_;
  std::vector<Request> intake_;
  bool stopping_ = false;

  std::mutex pipe_mu_;
  std::condition_variable pipe_cv_;
  std::deque<Entry> pipeline_;
  bool log_done_ = false;

  mutable std::mutex fail_mu_;
  Status failed_;

  // Segments: the log thread appends, the snapshot thread prunes.
  mutable std::mutex segs_mu_;
  std::vector<Segment> segments_;
  std::shared_ptr<AppendFile> current_;

  mutable std::mutex snap_mu_;
  std::condition_variable snap_cv_;
  bool snap_wanted_ = false;
  bool snap_stop_ = false;
  SnapshotStats last_snapshot_;  // guarded by snap_mu_
  int64_t last_snapshot_ms_ = 0;

  std::mutex expiry_mu_;
  std::condition_variable expiry_cv_;
  bool expiry_stop_ = false;

  RecoveryReport recovery_;
  std::atomic<uint64_t> fsyncs_{0}, txns_{0}, requests_{0}, batches_{0}, log_bytes_{0},
      snapshots_{0}, expired_{0}, slow_fsyncs_{0}, slowest_fsync_us_{0};

  std::thread log_thread_, commit_thread_, expiry_thread_, snapshot_thread_;
};

// ---- Lifecycle ----------------------------------------------------------------

Status EmbeddedStore::Init() {
  KILN_RETURN_IF_ERROR(MakeDirs(dir_, 0700));
  auto lock = FileLock::Acquire(dir_ + "/LOCK");
  if (!lock.ok()) return lock.status().WithContext("coordination store " + dir_);
  dir_lock_.emplace(std::move(*lock));

  KILN_ASSIGN_OR_RETURN(RecoveredState rec, Recover(dir_, &tree_, &changes_, opts_.retain_changes));
  recovery_ = rec.report;
  applied_zxid_ = tree_.last_zxid();
  preparer_ = std::make_unique<Preparer>(&tree_, rec.last_zxid + 1);
  for (const auto& [id, timeout_ms] : tree_.sessions())
    sessions_.Add(id, std::chrono::milliseconds(timeout_ms));
  last_snapshot_.zxid = rec.report.snapshot_zxid;
  last_snapshot_.nodes = rec.report.snapshot_nodes;

  segments_ = rec.segments;
  if (!segments_.empty() && segments_.back().size < opts_.segment_bytes) {
    KILN_ASSIGN_OR_RETURN(auto file, env_->OpenAppend(segments_.back().path));
    current_ = std::shared_ptr<AppendFile>(std::move(file));
    segment_size_ = segments_.back().size;
  } else {
    KILN_RETURN_IF_ERROR(StartSegment(rec.last_zxid + 1));
  }
  log::Info("coord", "embedded store open",
            {{"dir", dir_},
             {"zxid", tree_.last_zxid()},
             {"nodes", tree_.node_count()},
             {"sessions", tree_.sessions().size()},
             {"snapshot_zxid", recovery_.snapshot_zxid},
             {"replayed", recovery_.replayed_txns},
             {"seconds", fmt::format("{:.3f}", recovery_.seconds)}});

  log_thread_ = std::thread([this] { LogLoop(); });
  commit_thread_ = std::thread([this] { CommitLoop(); });
  expiry_thread_ = std::thread([this] { ExpiryLoop(); });
  snapshot_thread_ = std::thread([this] { SnapshotLoop(); });
  // A long log since the last snapshot makes the next start slow: take a
  // snapshot now rather than after the next segment.
  if (recovery_.replayed_txns > 0 && segments_.size() > 1) {
    std::lock_guard snap_lock(snap_mu_);
    snap_wanted_ = true;
    snap_cv_.notify_one();
  }
  return Status::Ok();
}

EmbeddedStore::~EmbeddedStore() {
  {
    std::lock_guard lock(expiry_mu_);
    expiry_stop_ = true;
  }
  expiry_cv_.notify_all();
  if (expiry_thread_.joinable()) expiry_thread_.join();
  {
    std::lock_guard lock(intake_mu_);
    stopping_ = true;
  }
  intake_cv_.notify_all();
  if (log_thread_.joinable()) log_thread_.join();
  if (commit_thread_.joinable()) commit_thread_.join();
  {
    std::lock_guard lock(snap_mu_);
    snap_stop_ = true;
  }
  snap_cv_.notify_all();
  if (snapshot_thread_.joinable()) snapshot_thread_.join();

  // Every one-shot watch and stream hears that it will get nothing more.
  std::vector<FiredWatch> fired;
  {
    WriteLock lock(this);
    watches_.CollectAll(&fired);
    StoreCallbackScope scope;
    for (auto& [w, ev] : fired) Invoke("watcher", w, ev);
    streams_.EndAll(Closing());
  }
  std::lock_guard lock(alive_->mu);
  alive_->store = nullptr;
}

// ---- Write path ---------------------------------------------------------------

void EmbeddedStore::Fail(Request& r, const Status& s) {
  switch (r.kind) {
    case Request::Kind::kWrite: Invoke("completion", r.on_multi, s); break;
    case Request::Kind::kCreateSession: Invoke("completion", r.on_session, s); break;
    case Request::Kind::kCloseSession: Invoke("completion", r.on_status, s); break;
  }
}

void EmbeddedStore::Submit(Request r) {
  {
    std::lock_guard lock(intake_mu_);
    if (!stopping_) {
      intake_.push_back(std::move(r));
      if (intake_.size() == 1) intake_cv_.notify_one();
      return;
    }
  }
  Fail(r, Closing());
}

EmbeddedStore::Entry EmbeddedStore::Prepare(Request& r, int64_t now_ms) {
  Entry e;
  switch (r.kind) {
    case Request::Kind::kWrite: {
      auto res = preparer_->PrepareMulti(r.ops, now_ms, r.single, &e.txn);
      e.complete = [cb = std::move(r.on_multi), res = std::move(res)](const Status& durable) {
        if (durable.ok())
          Invoke("completion", cb, res);
        else
          Invoke("completion", cb, durable);
      };
      break;
    }
    case Request::Kind::kCreateSession: {
      auto res = preparer_->PrepareCreateSession(r.timeout, now_ms, &e.txn);
      e.complete = [cb = std::move(r.on_session), res = std::move(res)](const Status& durable) {
        if (durable.ok())
          Invoke("completion", cb, res);
        else
          Invoke("completion", cb, durable);
      };
      break;
    }
    case Request::Kind::kCloseSession: {
      Status res = preparer_->PrepareCloseSession(r.session, now_ms, &e.txn);
      if (!res.ok()) e.txn.zxid = 0;
      e.complete = [cb = std::move(r.on_status), res](const Status& durable) {
        Invoke("completion", cb, durable.ok() ? res : durable);
      };
      break;
    }
  }
  return e;
}

void EmbeddedStore::LogLoop() {
  std::vector<Request> batch;
  std::string buf, payload;
  for (;;) {
    batch.clear();
    {
      std::unique_lock lock(intake_mu_);
      intake_cv_.wait(lock, [&] { return !intake_.empty() || stopping_; });
      if (intake_.empty()) break;  // stopping, and everything submitted is in the pipeline
      batch.swap(intake_);
    }
    requests_ += batch.size();
    std::vector<Entry> entries;
    entries.reserve(batch.size());
    buf.clear();
    Status failed = Failure();
    {
      std::shared_lock lock(tree_mu_);
      preparer_->Forget();
      int64_t now = NowMs();
      for (auto& r : batch) {
        if (!failed.ok()) {
          Entry e;
          Status s = failed;
          auto req = std::make_shared<Request>(std::move(r));
          e.complete = [req, s](const Status&) { Fail(*req, s); };
          entries.push_back(std::move(e));
          continue;
        }
        Entry e = Prepare(r, now);
        if (e.txn.zxid != 0) {
          payload.clear();
          EncodeTxn(e.txn, &payload);
          wal::AppendRecord(&buf, wal::kTxn, payload);
        }
        entries.push_back(std::move(e));
      }
    }
    if (!buf.empty()) {
      Status s = current_->Append(buf);
      if (!s.ok()) SetFailed(s);
      segment_size_ += buf.size();
      log_bytes_ += buf.size();
    }
    {
      std::lock_guard lock(pipe_mu_);
      for (auto& e : entries) {
        e.file = current_;
        pipeline_.push_back(std::move(e));
      }
    }
    pipe_cv_.notify_one();
    if (segment_size_ >= opts_.segment_bytes && Failure().ok()) {
      Status s = Roll();
      if (!s.ok()) SetFailed(s);
    }
  }
  {
    std::lock_guard lock(pipe_mu_);
    log_done_ = true;
  }
  pipe_cv_.notify_one();
}

void EmbeddedStore::CommitLoop() {
  std::deque<Entry> batch;
  std::vector<ChangePtr> changes;
  std::vector<FiredWatch> fired;
  for (;;) {
    batch.clear();
    {
      std::unique_lock lock(pipe_mu_);
      pipe_cv_.wait(lock, [&] { return !pipeline_.empty() || log_done_; });
      if (pipeline_.empty()) break;
      batch.swap(pipeline_);
    }
    Status durable = Failure();
    bool any_txn =
        std::any_of(batch.begin(), batch.end(), [](const Entry& e) { return e.txn.zxid != 0; });
    if (durable.ok() && any_txn) {
      // One fdatasync covers every record written so far: group commit. A
      // segment roll leaves entries in two files; sync them in order.
      AppendFile* synced = nullptr;
      for (const Entry& e : batch) {
        if (e.txn.zxid == 0 || e.file.get() == synced) continue;
        auto sync_start = std::chrono::steady_clock::now();
        Status s = e.file->Sync();
        ++fsyncs_;
        NoteSyncTime(std::chrono::steady_clock::now() - sync_start, batch.size());
        if (!s.ok()) {
          SetFailed(s);
          durable = s;
          break;
        }
        synced = e.file.get();
      }
    }
    if (durable.ok() && any_txn) {
      changes.clear();
      fired.clear();
      WriteLock lock(this);
      for (const Entry& e : batch) {
        if (e.txn.zxid == 0) continue;
        Status s = tree_.Apply(e.txn);
        if (!s.ok()) {
          // The preparer checked this transaction against this very state;
          // a mismatch is a bug, and the tree may now be half-changed.
          log::Error("coord", "transaction does not apply", {{"error", s.message()}});
          durable = Internal("coordination store: " + s.message());
          SetFailed(durable);
          break;
        }
        ++txns_;
        ChangesOf(e.txn, &changes);
        watches_.Collect(e.txn, &fired);
        for (const TxnOp& op : e.txn.ops) {
          if (op.kind == TxnOpKind::kCreateSession)
            sessions_.Add(op.session, std::chrono::milliseconds(op.timeout_ms));
          else if (op.kind == TxnOpKind::kCloseSession)
            sessions_.Remove(op.session);
        }
      }
      changes_.Append(changes);
      applied_zxid_ = tree_.last_zxid();
      // Watchers and streams hear of the batch before the lock opens to
      // readers: nobody can read an update before its event is handed out.
      StoreCallbackScope scope;
      for (auto& [w, ev] : fired) Invoke("watcher", w, ev);
      streams_.Publish(changes);
    }
    ++batches_;
    StoreCallbackScope scope;
    for (Entry& e : batch) e.complete(durable);
  }
}

Status EmbeddedStore::StartSegment(Zxid first_zxid) {
  std::string path = dir_ + "/" + SegmentFileName(first_zxid);
  KILN_ASSIGN_OR_RETURN(auto file, env_->OpenAppend(path));
  std::string header;
  wal::AppendRecord(&header, wal::kSegmentHeader, wal::SegmentHeaderPayload(first_zxid));
  KILN_RETURN_IF_ERROR(file->Append(header));
  KILN_RETURN_IF_ERROR(env_->SyncDir(dir_));
  std::lock_guard lock(segs_mu_);
  segments_.push_back(Segment{first_zxid, path, header.size()});
  current_ = std::shared_ptr<AppendFile>(std::move(file));
  segment_size_ = header.size();
  return Status::Ok();
}

Status EmbeddedStore::Roll() {
  // The old segment must be wholly durable before anything reaches the new
  // one: recovery treats damage anywhere but the last segment's tail as
  // corruption.
  Status s = current_->Sync();
  ++fsyncs_;
  if (!s.ok()) return s;
  KILN_RETURN_IF_ERROR(StartSegment(preparer_->next_zxid()));
  std::lock_guard lock(snap_mu_);
  snap_wanted_ = true;
  snap_cv_.notify_one();
  return Status::Ok();
}

void EmbeddedStore::NoteSyncTime(std::chrono::steady_clock::duration took, size_t waiting) {
  auto us =
      static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(took).count());
  uint64_t cur = slowest_fsync_us_.load();
  while (us > cur && !slowest_fsync_us_.compare_exchange_weak(cur, us)) {
  }
  if (took < std::chrono::seconds(1)) return;
  ++slow_fsyncs_;
  log::Warn("coord", "slow fsync: answers to updates wait for it",
            {{"seconds", fmt::format("{:.3f}", static_cast<double>(us) / 1e6)},
             {"updates", waiting},
             {"dir", dir_}});
}

void EmbeddedStore::SetFailed(const Status& s) {
  std::lock_guard lock(fail_mu_);
  if (!failed_.ok()) return;
  failed_ = Status(Code::kIoError, "the coordination log failed (" + s.message() +
                                       "); it refuses writes until kiln restarts and recovers it");
  log::Error("coord", "write-ahead log failed: refusing writes", {{"error", s.message()}});
}

// ---- Background -----------------------------------------------------------------

void EmbeddedStore::ExpiryLoop() {
  // Wake at least this often: a new session may expire before the deadline
  // we are waiting for.
  auto tick = std::max<std::chrono::milliseconds>(opts_.min_session_timeout / 2,
                                                  std::chrono::milliseconds(10));
  std::unique_lock lock(expiry_mu_);
  while (!expiry_stop_) {
    auto now = SessionTracker::Clock::now();
    auto wake = now + tick;
    if (auto next = sessions_.NextDeadline(); next && *next < wake) wake = *next;
    expiry_cv_.wait_until(lock, wake, [&] { return expiry_stop_; });
    if (expiry_stop_) break;
    for (SessionId id : sessions_.TakeExpired(SessionTracker::Clock::now())) {
      ++expired_;
      log::Info("coord", "session expired", {{"session", id}});
      Request r;
      r.kind = Request::Kind::kCloseSession;
      r.session = id;
      r.on_status = [id](Status s) {
        if (!s.ok() && s.code() != Code::kSessionExpired)
          log::Warn("coord", "closing an expired session failed",
                    {{"session", id}, {"error", s.message()}});
      };
      Submit(std::move(r));
    }
  }
}

void EmbeddedStore::SnapshotLoop() {
  for (;;) {
    {
      std::unique_lock lock(snap_mu_);
      snap_cv_.wait(lock, [&] { return snap_wanted_ || snap_stop_; });
      if (snap_stop_) return;
      snap_wanted_ = false;
    }
    auto start = std::chrono::steady_clock::now();
    auto st = WriteSnapshot(dir_, &tree_, &tree_mu_);
    if (!st.ok()) {
      // Not fatal: the log still holds everything; the next roll retries.
      log::Warn("coord", "snapshot failed", {{"error", st.status().message()}});
      continue;
    }
    ++snapshots_;
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    log::Info("coord", "snapshot written",
              {{"zxid", st->zxid},
               {"nodes", st->nodes},
               {"bytes", st->bytes},
               {"seconds", fmt::format("{:.3f}", secs)}});
    {
      std::lock_guard lock(snap_mu_);
      last_snapshot_ = *st;
      last_snapshot_ms_ = NowMs();
    }
    Prune(st->zxid);
  }
}

void EmbeddedStore::Prune(Zxid snapshot_zxid) {
  Zxid keep_after;
  {
    std::shared_lock lock(tree_mu_);
    keep_after = std::min(snapshot_zxid, changes_.trimmed_through());
  }
  std::vector<std::string> doomed;
  {
    std::lock_guard lock(segs_mu_);
    // A segment holds zxids [first, next segment's first - 1]; the last one
    // is never removed.
    while (segments_.size() > 1 && segments_[1].first_zxid - 1 <= keep_after) {
      doomed.push_back(segments_.front().path);
      segments_.erase(segments_.begin());
    }
  }
  if (DIR* d = ::opendir(dir_.c_str())) {
    while (dirent* e = ::readdir(d)) {
      Zxid z;
      if (ParseSnapshotFileName(e->d_name, &z) && z < snapshot_zxid)
        doomed.push_back(dir_ + "/" + e->d_name);
    }
    ::closedir(d);
  }
  for (const auto& path : doomed) ::unlink(path.c_str());
  if (!doomed.empty()) (void)env_->SyncDir(dir_);
}

// ---- API ------------------------------------------------------------------------

void EmbeddedStore::CreateAsync(CreateOp op, Callback<CreateResult> done) {
  Request r;
  r.single = true;
  r.ops.emplace_back(std::move(op));
  r.on_multi = [done = std::move(done)](Result<MultiResult> m) {
    if (!m.ok()) return done(m.status());
    done(CreateResult{std::move(m->results[0].path), m->results[0].stat, m->zxid});
  };
  Submit(std::move(r));
}

void EmbeddedStore::SetAsync(SetOp op, Callback<SetResult> done) {
  Request r;
  r.single = true;
  r.ops.emplace_back(std::move(op));
  r.on_multi = [done = std::move(done)](Result<MultiResult> m) {
    if (!m.ok()) return done(m.status());
    done(SetResult{m->results[0].stat, m->zxid});
  };
  Submit(std::move(r));
}

void EmbeddedStore::DeleteAsync(DeleteOp op, StatusCallback done) {
  Request r;
  r.single = true;
  r.ops.emplace_back(std::move(op));
  r.on_multi = [done = std::move(done)](Result<MultiResult> m) { done(m.status()); };
  Submit(std::move(r));
}

void EmbeddedStore::MultiAsync(std::vector<Op> ops, Callback<MultiResult> done) {
  Request r;
  r.ops = std::move(ops);
  r.on_multi = std::move(done);
  Submit(std::move(r));
}

void EmbeddedStore::GetAsync(std::string path, Watcher watch, Callback<GetResult> done) {
  Status valid = ValidatePath(path);
  if (!valid.ok()) return done(valid);
  Result<GetResult> out = NotFound(path + ": no such znode");
  {
    ReadLock lock(this);
    if (const Node* n = tree_.Find(path)) {
      out = GetResult{*n->data, n->stat, tree_.last_zxid()};
      if (watch) watches_.AddData(path, std::move(watch));
    }
  }
  done(std::move(out));
}

void EmbeddedStore::ExistsAsync(std::string path, Watcher watch,
                                Callback<std::optional<Stat>> done) {
  Status valid = ValidatePath(path);
  if (!valid.ok()) return done(valid);
  std::optional<Stat> out;
  {
    ReadLock lock(this);
    if (const Node* n = tree_.Find(path)) out = n->stat;
    if (watch) watches_.AddData(path, std::move(watch));
  }
  done(out);
}

void EmbeddedStore::ChildrenAsync(std::string path, Watcher watch, Callback<ChildrenResult> done) {
  Status valid = ValidatePath(path);
  if (!valid.ok()) return done(valid);
  Result<ChildrenResult> out = NotFound(path + ": no such znode");
  {
    ReadLock lock(this);
    if (const Node* n = tree_.Find(path)) {
      ChildrenResult c;
      c.children.assign(n->children.begin(), n->children.end());
      c.stat = n->stat;
      c.zxid = tree_.last_zxid();
      out = std::move(c);
      if (watch) watches_.AddChild(path, std::move(watch));
    }
  }
  done(std::move(out));
}

void EmbeddedStore::CreateSessionAsync(std::chrono::milliseconds timeout,
                                       Callback<SessionInfo> done) {
  Request r;
  r.kind = Request::Kind::kCreateSession;
  r.timeout = std::clamp(timeout, opts_.min_session_timeout, opts_.max_session_timeout);
  r.on_session = std::move(done);
  Submit(std::move(r));
}

void EmbeddedStore::HeartbeatAsync(SessionId id, StatusCallback done) {
  done(sessions_.Touch(id));
}

void EmbeddedStore::CloseSessionAsync(SessionId id, StatusCallback done) {
  Request r;
  r.kind = Request::Kind::kCloseSession;
  r.session = id;
  r.on_status = std::move(done);
  Submit(std::move(r));
}

Result<std::unique_ptr<WatchStream>> EmbeddedStore::OpenStream(const StreamOptions& options,
                                                               StreamHandlers handlers) {
  KILN_RETURN_IF_ERROR(ValidatePath(options.path));
  if (!handlers.on_change) return InvalidArgument("a watch stream needs an on_change handler");
  auto sub = std::make_shared<StreamSub>();
  sub->path = options.path;
  sub->recursive = options.recursive;
  sub->handlers = std::move(handlers);
  auto compacted = [&](Zxid since, Zxid trimmed) {
    return Status(Code::kCompacted,
                  fmt::format("changes after zxid {} are no longer retained (streams can resume "
                              "from zxid {} on); re-read the znodes and resume from the zxid "
                              "of that read",
                              since, trimmed));
  };
  Zxid pos = options.since;
  if (pos < 0) {
    WriteLock lock(this);
    sub->position = tree_.last_zxid();
    streams_.Add(sub);
    return std::unique_ptr<WatchStream>(new EmbeddedStream(alive_, sub));
  }
  {
    ReadLock lock(this);
    if (pos > tree_.last_zxid())
      return InvalidArgument(fmt::format("since={} is ahead of the store, whose last zxid is {}",
                                         pos, tree_.last_zxid()));
  }
  // Catch up from the retained log without holding the lock while the
  // handler runs; the last step registers under the exclusive lock, so no
  // change can fall between the backlog and the live stream.
  for (;;) {
    std::vector<ChangePtr> backlog;
    bool registered = false;
    {
      ReadLock lock(this);
      if (pos < changes_.trimmed_through()) return compacted(pos, changes_.trimmed_through());
      backlog = changes_.After(pos, 1024);
    }
    if (backlog.empty()) {
      WriteLock lock(this);
      if (pos < changes_.trimmed_through()) return compacted(pos, changes_.trimmed_through());
      backlog = changes_.After(pos, 1024);
      if (backlog.empty()) {
        sub->position = pos;
        streams_.Add(sub);
        registered = true;
      }
    }
    if (registered) break;
    for (const auto& c : backlog) {
      if (StreamHub::InScope(sub->path, sub->recursive, c->path)) sub->handlers.on_change(c);
      pos = c->zxid;
    }
  }
  return std::unique_ptr<WatchStream>(new EmbeddedStream(alive_, sub));
}

void EmbeddedStore::RemoveStream(StreamSub* sub) {
  WriteLock lock(this);
  streams_.Remove(sub);
}

EmbeddedStream::~EmbeddedStream() {
  std::lock_guard lock(alive_->mu);
  if (alive_->store) alive_->store->RemoveStream(sub_.get());
}

Zxid EmbeddedStream::position() const {
  return sub_->position.load();
}

Zxid EmbeddedStore::OldestResumableZxid() const {
  ReadLock lock(this);
  return changes_.trimmed_through();
}

Json EmbeddedStore::Describe() const {
  Json j;
  j["backend"] = "embedded";
  j["url"] = "embedded:" + dir_;
  {
    ReadLock lock(this);
    j["zxid"] = tree_.last_zxid();
    j["znodes"] = tree_.node_count();
    j["sessions"] = tree_.sessions().size();
    j["streams"] = streams_.size();
    j["retained_changes"] = changes_.size();
    j["resumable_from_zxid"] = changes_.trimmed_through();
  }
  j["watches"] = watches_.size();
  Status f = Failure();
  j["state"] = f.ok() ? "ok" : "failed";
  if (!f.ok()) j["error"] = f.message();
  uint64_t fsyncs = fsyncs_.load();
  j["log"] = {{"fsyncs", fsyncs},
              {"slowest_fsync_ms", static_cast<double>(slowest_fsync_us_.load()) / 1000.0},
              {"slow_fsyncs", slow_fsyncs_.load()},
              {"transactions", txns_.load()},
              {"bytes_written", log_bytes_.load()},
              {"transactions_per_fsync",
               fsyncs ? static_cast<double>(txns_.load()) / static_cast<double>(fsyncs) : 0.0}};
  {
    std::lock_guard lock(segs_mu_);
    j["log"]["segments"] = segments_.size();
  }
  {
    std::lock_guard lock(snap_mu_);
    j["snapshot"] = {{"zxid", last_snapshot_.zxid},
                     {"znodes", last_snapshot_.nodes},
                     {"taken", snapshots_.load()}};
  }
  j["recovery"] = {{"snapshot_zxid", recovery_.snapshot_zxid},
                   {"replayed", recovery_.replayed_txns},
                   {"seconds", recovery_.seconds}};
  if (!recovery_.torn_tail.empty()) j["recovery"]["torn_tail"] = recovery_.torn_tail;
  return j;
}

std::vector<std::pair<std::string, double>> EmbeddedStore::Counters() const {
  return {{"kiln_coord_fsyncs_total", static_cast<double>(fsyncs_.load())},
          {"kiln_coord_slow_fsyncs_total", static_cast<double>(slow_fsyncs_.load())},
          {"kiln_coord_transactions_total", static_cast<double>(txns_.load())},
          {"kiln_coord_write_requests_total", static_cast<double>(requests_.load())},
          {"kiln_coord_log_bytes_total", static_cast<double>(log_bytes_.load())},
          {"kiln_coord_snapshots_total", static_cast<double>(snapshots_.load())},
          {"kiln_coord_sessions_expired_total", static_cast<double>(expired_.load())}};
}

}  // namespace embedded

Result<std::unique_ptr<CoordStore>> OpenEmbeddedStore(const CoordOptions& options,
                                                      const std::string& dir,
                                                      embedded::FileEnv* env) {
  auto store = std::make_unique<embedded::EmbeddedStore>(options, dir,
                                                         env ? env : embedded::DefaultFileEnv());
  KILN_RETURN_IF_ERROR(store->Init());
  return std::unique_ptr<CoordStore>(std::move(store));
}

}  // namespace kiln::coord
