#pragma once
// Group membership on a CoordStore: each member is an ephemeral znode
// DIR/NAME carrying its data, owned by the member's session, so a member
// that dies (its session expires) leaves the group by itself.
//
//   recipes::GroupMember me(store, "/kiln/servers", "srv-a", session, "10.0.0.2:8080");
//   KILN_RETURN_IF_ERROR(me.Join());
//   auto members = recipes::ListMembers(store, "/kiln/servers");
//   recipes::GroupWatch w(store, "/kiln/servers", [](const std::vector<std::string>& names) {...});
//   KILN_RETURN_IF_ERROR(w.Start());
//
// The caller owns the session and keeps it alive with heartbeats.
// REQUIRES: the store outlives these objects (GroupWatch: it is stopped
// before the store is destroyed).

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "server/coord/coord_store.h"

namespace kiln::coord::recipes {

struct Member {
  std::string name;
  std::string data;
  SessionId session = 0;  // the owning session
};

// The group's current members, sorted by name. Members that leave between
// the listing and their read are skipped. kNotFound when DIR is missing.
Result<std::vector<Member>> ListMembers(CoordStore& store, const std::string& dir);

// One member's znode. Not thread-safe (one thread at a time). Join and
// Leave are synchronous: not callable from store callbacks.
class GroupMember {
 public:
  GroupMember(CoordStore& store, std::string dir, std::string name, SessionId session,
              std::string data);
  // Leaves if joined (best effort).
  ~GroupMember();
  GroupMember(const GroupMember&) = delete;
  GroupMember& operator=(const GroupMember&) = delete;

  // Creates DIR (and its parents) if missing and DIR/NAME as an ephemeral
  // znode of the session. kAlreadyExists when the name is taken (by
  // another live session, or by this one already); kInvalidArgument when
  // NAME is not one path component.
  Status Join();
  // Sets this member's data (any version).
  Status Update(std::string data);
  // Deletes the znode. OK also when the session already ended.
  Status Leave();
  bool joined() const { return joined_; }

 private:
  CoordStore& store_;
  std::string dir_;
  std::string name_;
  SessionId session_;
  std::string data_;
  bool joined_ = false;
};

// Follows the group: calls on_change with the member names (sorted) at
// Start and after every membership change (names that appear or vanish;
// changes that land together may come as one call). It rides one-shot
// child watches, re-armed on each event. on_change runs on a store thread
// (the first call may run inside Start) and must not block. on_end runs
// at most once if the watch stops by itself: the group directory was
// deleted (kNotFound) or the store stopped watching (kUnavailable).
// Thread-safe; no callback runs once Stop (or the destructor) returned.
// Stop must not be called from a callback.
class GroupWatch {
 public:
  GroupWatch(CoordStore& store, std::string dir,
             std::function<void(const std::vector<std::string>&)> on_change,
             std::function<void(Status)> on_end = nullptr);
  ~GroupWatch();
  GroupWatch(const GroupWatch&) = delete;
  GroupWatch& operator=(const GroupWatch&) = delete;

  // Creates DIR (and its parents) if missing and starts following it.
  Status Start();
  void Stop();

  // Internal: shared with the watchers.
  struct State;

 private:
  std::shared_ptr<State> state_;
};

}  // namespace kiln::coord::recipes
