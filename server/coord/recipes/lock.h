#pragma once
// A distributed mutex on a CoordStore: ZooKeeper's lock recipe. Each
// contender creates an ephemeral sequential znode DIR/lock-NNNNNNNNNN under
// its session; the lowest counter holds the lock, every other contender
// watches only its predecessor (no herd effect when the lock changes hands).
// The lock is released by Unlock, or by the holder's session ending (close
// or expiry deletes its ephemeral znode).
//
//   recipes::Lock lock(store, "/kiln/locks/images", session);
//   KILN_RETURN_IF_ERROR(lock.Acquire(std::chrono::seconds(30)));
//   ... exclusive work ...
//   KILN_RETURN_IF_ERROR(lock.Unlock());
//
// The caller owns the session and keeps it alive with heartbeats: a lock
// is only as exclusive as its session is alive (after expiry another
// contender may take it). Threads: one Lock is used by one thread at a
// time; different Lock objects (any session) may contend from any threads.
// Acquire and Unlock are synchronous: not callable from store callbacks.
// REQUIRES: the store outlives the Lock.

#include <chrono>
#include <string>

#include "common/status.h"
#include "server/coord/coord_store.h"

namespace kiln::coord::recipes {

class Lock {
 public:
  // dir: the lock's znode (created with its parents if missing); not "/".
  Lock(CoordStore& store, std::string dir, SessionId session);
  // Unlocks if held (best effort).
  ~Lock();
  Lock(const Lock&) = delete;
  Lock& operator=(const Lock&) = delete;

  // Waits until this contender holds the lock, at most `timeout`. Errors:
  // kTimeout (its znode is withdrawn: it no longer queues), kSessionExpired
  // (the session ended while waiting), kFailedPrecondition (already held by
  // this object), or the store's error (kUnavailable, ...).
  Status Acquire(std::chrono::milliseconds timeout);

  // Releases the lock. OK also when the session already ended (the lock
  // was released then). kFailedPrecondition when not held.
  Status Unlock();

  // Whether Acquire succeeded and Unlock has not run. This object's view:
  // it cannot notice that its session expired meanwhile.
  bool held() const { return !node_.empty(); }
  // The held znode's path ("" when not held).
  const std::string& node() const { return node_; }

 private:
  CoordStore& store_;
  std::string dir_;
  SessionId session_;
  std::string node_;
};

}  // namespace kiln::coord::recipes
