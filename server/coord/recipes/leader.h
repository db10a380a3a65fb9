#pragma once
// Leader election on a CoordStore: ZooKeeper's recipe. Each candidate
// creates an ephemeral sequential znode DIR/candidate-NNNNNNNNNN (holding
// its data, e.g. its address) under its session; the lowest counter leads.
// Every other candidate watches only its predecessor and re-reads the
// candidates when it goes, so a leader's session ending (close or expiry)
// elects the next candidate without a herd of re-reads.
//
//   recipes::LeaderElection e(store, "/kiln/servers/leader", session, "10.0.0.2:8080",
//                             {.on_elected = [] { ... }, .on_lost = [](Status) { ... }});
//   KILN_RETURN_IF_ERROR(e.Start());
//   ...
//   e.Resign();
//
// Callbacks run on a store thread and must not block (they may make
// asynchronous store calls). on_elected runs at most once; on_lost runs at
// most once, when this candidate can no longer lead or follow: its znode
// vanished (the session ended: kSessionExpired) or the store stopped
// following (kUnavailable: it is closing, or the ZooKeeper connection was
// lost). After on_lost, create a new LeaderElection. No callback runs once
// Resign (or the destructor) has returned. A callback may call Resign; it
// must not destroy the object.
//
// The caller owns the session and keeps it alive with heartbeats.
// Threads: all methods are thread-safe. REQUIRES: the store outlives this
// object, and the object is resigned before the store is destroyed.

#include <functional>
#include <memory>
#include <string>

#include "common/status.h"
#include "server/coord/coord_store.h"

namespace kiln::coord::recipes {

struct LeaderCallbacks {
  std::function<void()> on_elected;
  std::function<void(Status)> on_lost;
};

class LeaderElection {
 public:
  LeaderElection(CoordStore& store, std::string dir, SessionId session, std::string data,
                 LeaderCallbacks callbacks);
  // Resigns (best effort).
  ~LeaderElection();
  LeaderElection(const LeaderElection&) = delete;
  LeaderElection& operator=(const LeaderElection&) = delete;

  // Enters the election: creates DIR (and its parents) if missing and this
  // candidate's znode, then follows the election asynchronously.
  // kFailedPrecondition when already started. Synchronous.
  Status Start();

  // Leaves the election: no callback runs after this returns, and this
  // candidate's znode is deleted (synchronously, except when called from a
  // store callback, where the delete is only issued).
  Status Resign();

  bool is_leader() const;
  // This candidate's znode ("" before Start).
  std::string node() const;

  // The current leader's data and znode path, read from the store: the
  // lowest candidate under dir. kNotFound when there is no candidate.
  struct Leader {
    std::string node;
    std::string data;
  };
  static Result<Leader> CurrentLeader(CoordStore& store, const std::string& dir);

  // Internal: shared with the asynchronous reads and watchers.
  struct State;

 private:
  std::shared_ptr<State> state_;
};

}  // namespace kiln::coord::recipes
