#pragma once
// CoordStore: kiln's coordination service. ZooKeeper's data model (a tree of
// znodes with data and stats, versions, sessions, ephemeral and sequential
// znodes, atomic multi, one-shot watches) plus persistent recursive watch
// streams that resume from a zxid. Two backends sit behind this interface:
//
//   embedded:DIR                       in-process; durable in DIR through a
//                                      write-ahead log with group commit
//                                      (docs/COORD_WAL.md)
//   zk://host:port[,host:port]/chroot  an existing ZooKeeper ensemble, through
//                                      libzookeeper-mt
//
// Both pass one conformance suite (tests/coord/conformance_test.cc).
//
// Durability: a write's completion reports success only once the update is
// durable (embedded: its log record is fsync'd; ZooKeeper: the quorum has
// logged it). An update is never visible to a read before it is durable.
//
// Ordering: updates are totally ordered by zxid. Watch events and stream
// changes are delivered in zxid order, and are handed to their watcher
// before any read can observe the update that fired them (embedded: watchers
// run before the update is published to readers; ZooKeeper: the server sends
// the notification before the read's reply on the same session).
//
// Threads: every method is thread-safe. The core API is asynchronous: a call
// returns at once and its completion runs later on a store thread (see
// coord_types.h for the rules completions and watchers follow). Synchronous
// wrappers (the methods without "Async") wait for the completion. Called
// from a completion or a watcher they would wait on the thread they run on,
// so they fail with kFailedPrecondition instead (embedded reads excepted:
// they never wait).
//
// Errors use common/status.h codes, as ZooKeeper's: kNotFound (no node),
// kAlreadyExists (node exists), kBadVersion, kNotEmpty,
// kNoChildrenForEphemerals, kTooLarge (data over 1 MiB), kInvalidArgument
// (malformed path, bad flags), kSessionExpired (unknown or expired session),
// kCompacted (a stream resume older than the retention), kUnavailable (the
// store is closing, or ZooKeeper is unreachable), kIoError (the disk failed;
// the embedded store then refuses every later write).

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/json.h"
#include "common/status.h"
#include "server/coord/coord_types.h"

namespace kiln::coord {

// Knobs for Open. Defaults suit production; tests shrink them.
struct CoordOptions {
  // "embedded:DIR" or "zk://host:port[,host:port]/chroot".
  std::string url;

  // Session timeouts are clamped to [min, max].
  std::chrono::milliseconds min_session_timeout{200};
  std::chrono::milliseconds max_session_timeout{std::chrono::minutes(10)};

  // Embedded: how many changes watch streams can resume from (the newest
  // `retain_changes` are kept, in memory and in the log segments on disk).
  size_t retain_changes = 100000;
  // Embedded: start a new log segment (and a snapshot) after this many
  // bytes of log.
  uint64_t segment_bytes = 64ull << 20;

  // ZooKeeper: how long Open waits for the ensemble.
  std::chrono::milliseconds connect_timeout{std::chrono::seconds(10)};
};

// A persistent watch stream (see CoordStore::OpenStream). Destroying it
// unsubscribes: once the destructor returns, no callback runs any more.
class WatchStream {
 public:
  virtual ~WatchStream() = default;
  // The zxid of the last change delivered (or the resume point).
  virtual Zxid position() const = 0;
};

struct StreamOptions {
  std::string path = "/";
  // true: the path and every znode below it; false: the path and its
  // direct children.
  bool recursive = true;
  // Deliver every change with zxid > since, starting from the retained
  // log. -1: only changes from now on. A since older than the retention
  // fails with kCompacted naming the oldest zxid still retained.
  Zxid since = -1;
};

// Receives a stream's changes, in zxid order, each exactly once. on_change
// runs on a store thread, before the change is visible to reads, and must
// not block. on_end runs at most once, after the last on_change: when the
// store closes (kUnavailable), or the backend lost changes it cannot replay
// (kCompacted). It does not run when the WatchStream is destroyed first.
struct StreamHandlers {
  std::function<void(const ChangePtr&)> on_change;
  std::function<void(Status)> on_end;
};

class CoordStore {
 public:
  // Opens a backend from options.url; see the top of this file. Embedded:
  // recovers DIR (creating it when missing) and fails with kCorruption
  // naming the file and offset if the log is damaged before its tail.
  // ZooKeeper: connects and creates the chroot if missing.
  static Result<std::unique_ptr<CoordStore>> Open(const CoordOptions& options);

  // Stops the store: every pending completion and one-shot watcher runs
  // (with kUnavailable / kNotWatching), every stream ends. Sessions are not
  // closed: their ephemeral znodes live on until they expire, as when a
  // ZooKeeper client disconnects.
  virtual ~CoordStore() = default;

  CoordStore(const CoordStore&) = delete;
  CoordStore& operator=(const CoordStore&) = delete;

  // ---- Asynchronous core ---------------------------------------------------

  virtual void CreateAsync(CreateOp op, Callback<CreateResult> done) = 0;
  virtual void SetAsync(SetOp op, Callback<SetResult> done) = 0;
  virtual void DeleteAsync(DeleteOp op, StatusCallback done) = 0;
  // All operations or none. On failure the status carries the failing
  // operation's code and a message "op N (kind PATH): ..." (N from 0).
  virtual void MultiAsync(std::vector<Op> ops, Callback<MultiResult> done) = 0;

  // Reads. A non-null watcher is registered atomically with the read:
  //   Get:      fires on the znode's next set or delete (kChanged/kDeleted)
  //   Exists:   as Get when the znode exists, else on its create (kCreated)
  //   Children: fires on the next child create/delete (kChildren) or on the
  //             znode's delete (kDeleted)
  // A read that fails with kNotFound registers no watch (except Exists),
  // and its watcher is dropped without being called.
  virtual void GetAsync(std::string path, Watcher watch, Callback<GetResult> done) = 0;
  // Ok(nullopt) when the znode does not exist.
  virtual void ExistsAsync(std::string path, Watcher watch,
                           Callback<std::optional<Stat>> done) = 0;
  virtual void ChildrenAsync(std::string path, Watcher watch, Callback<ChildrenResult> done) = 0;

  // Sessions. Ephemeral znodes belong to a session; it lives while
  // heartbeats arrive at least every `timeout` and ends on Close or expiry,
  // which deletes its ephemeral znodes as one update.
  virtual void CreateSessionAsync(std::chrono::milliseconds timeout,
                                  Callback<SessionInfo> done) = 0;
  // kSessionExpired when the session is unknown or already expired.
  virtual void HeartbeatAsync(SessionId id, StatusCallback done) = 0;
  virtual void CloseSessionAsync(SessionId id, StatusCallback done) = 0;

  // ---- Watch streams ---------------------------------------------------------

  // Subscribes to the changes under options.path. Fails at once with
  // kCompacted when options.since is older than the retention, and with
  // kInvalidArgument for a malformed path. The first change delivered has
  // zxid > since (or > the current zxid when since is -1).
  virtual Result<std::unique_ptr<WatchStream>> OpenStream(const StreamOptions& options,
                                                          StreamHandlers handlers) = 0;

  // ---- State ---------------------------------------------------------------

  // The zxid of the last update visible to reads.
  virtual Zxid LastZxid() const = 0;
  // The oldest zxid a stream can resume from (since >= this works).
  virtual Zxid OldestResumableZxid() const = 0;
  // "embedded" or "zookeeper".
  virtual std::string backend() const = 0;
  // For `kiln status` and /api/v1/status: backend, url, zxid, counts,
  // durability state (e.g. {"state":"ok"} or {"state":"failed","error":...}).
  virtual Json Describe() const = 0;
  // Prometheus-style counters: name -> value (e.g. "kiln_coord_fsyncs_total").
  virtual std::vector<std::pair<std::string, double>> Counters() const { return {}; }

  // ---- Synchronous wrappers ---------------------------------------------------
  // Each waits for the asynchronous call's completion.

  Result<CreateResult> Create(CreateOp op);
  // Convenience: a persistent znode.
  Result<CreateResult> Create(const std::string& path, std::string data = {});
  Result<SetResult> Set(SetOp op);
  Result<SetResult> Set(const std::string& path, std::string data,
                        int32_t version = kAnyVersion);
  Status Delete(const std::string& path, int32_t version = kAnyVersion);
  Result<MultiResult> Multi(std::vector<Op> ops);
  Result<GetResult> Get(const std::string& path, Watcher watch = nullptr);
  Result<std::optional<Stat>> Exists(const std::string& path, Watcher watch = nullptr);
  Result<ChildrenResult> Children(const std::string& path, Watcher watch = nullptr);
  Result<SessionInfo> CreateSession(std::chrono::milliseconds timeout);
  Status Heartbeat(SessionId id);
  Status CloseSession(SessionId id);

  // Creates path and any missing ancestors as persistent znodes with empty
  // data (mkdir -p); znodes that already exist are left as they are.
  Status EnsurePath(const std::string& path);

 protected:
  CoordStore() = default;
  // Whether a synchronous wrapper may wait on the calling thread. The
  // default refuses on store callback threads (see InStoreCallback).
  virtual bool MayWaitHere(bool is_write) const;
};

// True while the calling thread runs a store completion, watcher or stream
// handler. Backends mark their callback threads with StoreCallbackScope.
bool InStoreCallback();
class StoreCallbackScope {
 public:
  StoreCallbackScope();
  ~StoreCallbackScope();
  StoreCallbackScope(const StoreCallbackScope&) = delete;
  StoreCallbackScope& operator=(const StoreCallbackScope&) = delete;
};

// Parses an options.url. Exposed for `kiln serve --coord` flag checking.
struct CoordUrl {
  enum class Kind { kEmbedded, kZooKeeper } kind = Kind::kEmbedded;
  std::string dir;      // embedded
  std::string hosts;    // zookeeper: "host:port,host:port"
  std::string chroot;   // zookeeper: "/kiln" or "" for none
};
Result<CoordUrl> ParseCoordUrl(const std::string& url);

}  // namespace kiln::coord
