#pragma once
// Live agents. An agent opens a session through the API; the server keeps
// it as a coordination-store session with an ephemeral znode
//
//   /kiln/nodes/<id>/agent   {"mode","run","started_ms",...what the agent says}
//
// that lives while the agent's heartbeats arrive. When an agent dies (power
// lost, kernel panic, cable pulled) its session expires, the znode vanishes,
// and the watcher here marks a node that was installing as "lost".
//
// Thread safety: all methods are thread-safe. The watcher's work (inventory
// writes, which wait for the store) runs on a thread of its own, never on a
// store thread.

#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "common/json.h"
#include "common/status.h"
#include "server/coord/coord_store.h"

namespace kiln {
namespace inventory {
class Inventory;
}

class AgentSessions {
 public:
  static Result<std::unique_ptr<AgentSessions>> Start(coord::CoordStore& store,
                                                      inventory::Inventory& inventory);
  ~AgentSessions();

  // Opens a session for node's agent and (re)creates its agent znode with
  // info. An older session of the node is closed first.
  Result<coord::SessionInfo> Open(const std::string& node, std::chrono::milliseconds timeout,
                                  const Json& info);
  // kSessionExpired when the session is gone (the agent must open a new
  // one); kPermissionDenied when it is not this node's.
  Status Heartbeat(const std::string& node, coord::SessionId id);
  Status Close(const std::string& node, coord::SessionId id);
  // Replaces the agent znode's data (the agent reports its image, drift).
  Status Update(const std::string& node, coord::SessionId id, const Json& info);

  static std::string AgentPath(const std::string& node);

 private:
  AgentSessions(coord::CoordStore& store, inventory::Inventory& inventory)
      : store_(store), inventory_(inventory) {}
  void OnChange(const coord::ChangePtr& c);
  void WorkLoop();

  coord::CoordStore& store_;
  inventory::Inventory& inventory_;
  std::unique_ptr<coord::WatchStream> stream_;

  std::mutex mu_;
  std::map<std::string, coord::SessionId> session_of_;  // node -> its agent's session
  std::condition_variable cv_;
  std::deque<std::string> lost_;  // nodes whose agent znode vanished
  bool stop_ = false;
  std::thread worker_;
};

}  // namespace kiln
