#pragma once
// The values that cross the CoordStore interface: znode stats, operations,
// their results and watch events. ZooKeeper's data model, kept field for
// field so that ZooKeeper's recipes and its documentation apply unchanged.
//
// Everything here is a plain value type; copying is safe from any thread.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/status.h"

namespace kiln::coord {

// One total order over every update the store has ever applied. Zxids start
// at 1 and only grow; 0 means "before anything". A multi is one update: all
// of its operations share one zxid.
using Zxid = int64_t;
// A client session. 0 means "no session" (persistent znodes carry owner 0).
using SessionId = int64_t;

// Largest data a znode may hold (ZooKeeper's default jute.maxbuffer).
inline constexpr size_t kMaxDataSize = 1 << 20;
// Longest path accepted, in bytes.
inline constexpr size_t kMaxPathLength = 4096;
// "Any version" for Set, Delete and Check.
inline constexpr int32_t kAnyVersion = -1;

// A znode's metadata, as ZooKeeper's Stat.
struct Stat {
  Zxid czxid = 0;                 // the update that created the znode
  Zxid mzxid = 0;                 // the update that last changed its data
  Zxid pzxid = 0;                 // the update that last added or removed a child
  int64_t ctime_ms = 0;           // wall clock at create, ms since the Unix epoch
  int64_t mtime_ms = 0;           // wall clock at the last data change
  int32_t version = 0;            // number of data changes
  int32_t cversion = 0;           // number of child list changes
  SessionId ephemeral_owner = 0;  // the owning session, 0 for persistent
  int32_t data_length = 0;
  int32_t num_children = 0;

  bool operator==(const Stat&) const = default;
};

// ---- Operations ------------------------------------------------------------
// One struct per kind, so that Multi takes the same values as the single
// calls. Paths are absolute ("/kiln/nodes/web01"); see path.h for the rules.

struct CreateOp {
  std::string path;
  std::string data;
  // The znode vanishes when `session` ends. REQUIRES session != 0.
  bool ephemeral = false;
  // Appends a 10-digit, zero-padded counter to the last path component:
  // "/q/item-" becomes "/q/item-0000000007". As in ZooKeeper, the counter
  // is the number of children ever created under the parent (deletes do
  // not lower it, and do not raise it either).
  bool sequential = false;
  SessionId session = 0;
};

struct SetOp {
  std::string path;
  std::string data;
  int32_t version = kAnyVersion;  // expected current version
};

struct DeleteOp {
  std::string path;
  int32_t version = kAnyVersion;
};

// Fails the enclosing multi unless path exists at the expected version.
struct CheckOp {
  std::string path;
  int32_t version = kAnyVersion;
};

using Op = std::variant<CreateOp, SetOp, DeleteOp, CheckOp>;

// "create", "set", "delete", "check".
std::string_view OpName(const Op& op);
const std::string& OpPath(const Op& op);

// ---- Results ---------------------------------------------------------------

struct CreateResult {
  std::string path;  // the created path (with the sequence suffix, if any)
  Stat stat;
  Zxid zxid = 0;  // the update's zxid
};

struct SetResult {
  Stat stat;
  Zxid zxid = 0;
};

struct GetResult {
  std::string data;
  Stat stat;
  // The store's last applied zxid when this read was served: a client that
  // re-reads after a "compacted" stream error resumes from here. Backends
  // that cannot tell report a lower bound (ZooKeeper: the stat's zxids).
  Zxid zxid = 0;
};

struct ChildrenResult {
  std::vector<std::string> children;  // names, not paths, sorted
  Stat stat;                          // the parent's
  Zxid zxid = 0;                      // as GetResult::zxid
};

// One entry per operation of a successful multi, in order.
struct OpResult {
  std::string path;  // create: the created path; others: the op's path
  Stat stat;         // create, set: the new stat; delete, check: zeros
};

struct MultiResult {
  std::vector<OpResult> results;
  Zxid zxid = 0;  // the one zxid of the whole multi (0 if it held only checks)
};

struct SessionInfo {
  SessionId id = 0;
  // The timeout the store granted (requests are clamped to the backend's
  // limits). Without a heartbeat for this long the session expires.
  std::chrono::milliseconds timeout{0};
};

// ---- Watches ---------------------------------------------------------------

enum class EventType {
  kCreated,   // a znode was created
  kDeleted,   // a znode was deleted
  kChanged,   // a znode's data was set
  kChildren,  // a znode's child list changed (one-shot child watches only)
  // One-shot watches only: the watch will never fire (the store is closing,
  // or the connection to ZooKeeper was lost). Re-read and watch again.
  kNotWatching,
};

// "created", "deleted", "changed", "children", "not_watching".
std::string_view EventTypeName(EventType t);
std::optional<EventType> EventTypeFromName(std::string_view name);

// What a one-shot watch reports: ZooKeeper's WatchedEvent plus the zxid of
// the update that fired it (0 where the backend cannot tell).
struct WatchEvent {
  EventType type = EventType::kChanged;
  std::string path;
  Zxid zxid = 0;
};

// A one-shot watcher. Called exactly once: with the event that fired it, or
// with kNotWatching when the watch can no longer fire. It runs on a store
// thread and must not block: it may issue asynchronous calls; a synchronous
// call from a store thread fails with kFailedPrecondition (it would wait on
// the thread it runs on), except reads on the embedded backend, which never
// wait.
using Watcher = std::function<void(const WatchEvent&)>;

// One entry of a persistent watch stream: a change as the store applied it.
// Streams see kCreated, kChanged and kDeleted for every znode in their scope
// (a recursive stream: the path and everything below it; otherwise the path
// and its direct children).
struct Change {
  Zxid zxid = 0;
  EventType type = EventType::kChanged;
  std::string path;
  // kCreated and kChanged: the data the znode holds after the change.
  std::shared_ptr<const std::string> data;
  int32_t version = 0;            // the data version after the change
  SessionId ephemeral_owner = 0;  // kCreated: the owner, 0 for persistent
  int64_t time_ms = 0;            // wall clock of the update
  // The last change of its zxid (a multi makes several changes with one
  // zxid): a client that resumes "after zxid Z" should only record Z as
  // its position once it has seen this.
  bool txn_end = true;
};
using ChangePtr = std::shared_ptr<const Change>;

// ---- Callbacks -------------------------------------------------------------
// Every asynchronous call takes one completion that the store calls exactly
// once, from any thread (possibly before the call returns), also when the
// store shuts down (then with kUnavailable). Completions must not block:
// they run on the store's commit thread.

template <typename T>
using Callback = std::function<void(Result<T>)>;
using StatusCallback = std::function<void(Status)>;

}  // namespace kiln::coord
