#pragma once
// Watch streams for the zookeeper backend: a mirror of the watched subtree
// kept up to date with ZooKeeper's one-shot watches (the 3.8 C client has
// no persistent watches).
//
// The mirror reads every znode in scope once (with a data watch and, for
// znodes whose children are in scope, a child watch) and then re-reads a
// znode whenever a watch fires, comparing with what it knew to produce
// created / changed / deleted changes. Zxids come from the stats read
// (czxid, mzxid, and the parent's pzxid for deletes). What this cannot do,
// and the embedded backend can: see every intermediate value of a znode
// that changes faster than a watch is re-armed, and replay history.
//
// Catch-up instead of replay: a stream opened with since >= 0 first reports
// the znodes in scope that changed after `since`, from their current state
// (kCreated when czxid > since, else kChanged when mzxid > since), in zxid
// order, then follows live changes. Znodes deleted while nobody watched
// leave no trace in ZooKeeper and are not reported; intermediate values are
// collapsed into the current one. While the first reads run, changes are
// held back and released sorted by zxid.
//
// Threads: every callback runs on the ZooKeeper completion thread; the
// mirror's state is touched only there, except `dead` (guarded by mu).
//
// A mirror lives as long as its session: when the store's main session
// expires, the store stops the mirror and starts a new one on the new
// session with since = the old one's position, so the stream goes on with a
// catch-up from the current state (as a resume does).

#include <zookeeper/zookeeper.h>

#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "server/coord/coord_store.h"

namespace kiln::coord::zk {

class Mirror : public std::enable_shared_from_this<Mirror> {
 public:
  Mirror(zhandle_t* zh, std::string path, bool recursive, Zxid since, StreamHandlers handlers);

  // Reads the subtree and arms the watches; waits until the first reads
  // are done (or timeout). REQUIRES: not on the completion thread.
  Status Start(std::chrono::milliseconds timeout);
  // No more handlers run once this returns (unless called from one).
  void Stop();
  // The store is closing: ends the stream with status.
  void End(const Status& status);
  Zxid position() const;
  const std::string& root() const { return root_; }
  bool recursive() const { return recursive_; }
  const StreamHandlers& handlers() const { return handlers_; }
  zhandle_t* zh() const { return zh_; }

  // Watcher and completion contexts still registered with the client. The
  // store frees them after the client is closed.
  struct Ctx;
  void Forget(Ctx* c);
  // REQUIRES: the client is closed (no callback can run any more).
  void FreeContexts();

 private:
  enum class Kind { kData, kChildren, kExists };
  void Watch(const std::string& path, bool initial);
  void ReadData(const std::string& path, bool initial);
  void ReadChildren(const std::string& path, bool initial);
  void ArmExists(const std::string& path);
  Ctx* NewCtx(Kind kind, const std::string& path, bool initial);

  static void OnWatch(zhandle_t* zh, int type, int state, const char* path, void* ctx);
  static void OnData(int rc, const char* value, int len, const ::Stat* stat, const void* ctx);
  static void OnChildren(int rc, const struct String_vector* names, const ::Stat* stat,
                         const void* ctx);
  static void OnExists(int rc, const ::Stat* stat, const void* ctx);

  void HandleData(Ctx* c, int rc, std::string data, const ::Stat* stat);
  void HandleChildren(Ctx* c, int rc, std::set<std::string> names, const ::Stat* stat);
  void HandleWatch(Ctx* c, int type, int state);
  void Emit(EventType type, const std::string& path, std::string data, int32_t version,
            SessionId owner, Zxid zxid, int64_t time_ms);
  void RemoveSubtree(const std::string& path, Zxid zxid);
  bool ChildrenInScope(const std::string& path) const;
  void InitialDone();

  zhandle_t* zh_;
  const std::string root_;
  const bool recursive_;
  const Zxid since_;  // -1: no catch-up
  StreamHandlers handlers_;
  // Changes held back while the first reads run (completion thread only).
  std::vector<ChangePtr> held_;
  bool holding_ = true;
  // The highest zxid any read has shown (completion thread only): a delete
  // learned from a data watch carries no zxid and is stamped with this.
  Zxid seen_ = 0;

  // Completion-thread state.
  struct Known {
    int32_t version = 0;
    std::set<std::string> children;
  };
  std::map<std::string, Known> known_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool dead_ = false;
  bool ended_ = false;
  int initial_left_ = 0;
  Zxid position_ = 0;
  std::set<Ctx*> ctxs_;
};

}  // namespace kiln::coord::zk
