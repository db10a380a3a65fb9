#pragma once
// The server's own footprint in the coordination store: the /kiln namespace
// (DESIGN.md) and the ephemeral /kiln/servers/<id> that says this server is
// alive, kept by a session with heartbeats.
//
// Thread safety: ServerPresence runs its own heartbeat thread; its methods
// may be called from any thread. The store must outlive it.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "common/json.h"
#include "common/status.h"
#include "server/coord/coord_store.h"

namespace kiln {

// The znodes every kiln server relies on; created when missing.
inline constexpr const char* kKilnNamespace[] = {"/kiln",         "/kiln/nodes",
                                                 "/kiln/images",  "/kiln/servers",
                                                 "/kiln/locks",   "/kiln/election"};
Status CreateKilnNamespace(coord::CoordStore& store);

class ServerPresence {
 public:
  // Opens a session and creates /kiln/servers/<id> (ephemeral) holding
  // info. A leftover znode of an earlier run of this server (another
  // session, e.g. after a crash) is replaced.
  static Result<std::unique_ptr<ServerPresence>> Start(coord::CoordStore* store, std::string id,
                                                       Json info,
                                                       std::chrono::milliseconds timeout);
  // Stops heartbeating and closes the session: the znode vanishes at once.
  ~ServerPresence();

  const std::string& path() const { return path_; }
  coord::SessionId session() const { return session_.load(); }
  Json Describe() const;

 private:
  ServerPresence(coord::CoordStore* store, std::string id, Json info,
                 std::chrono::milliseconds timeout);
  // Opens a session and (re)creates the znode.
  Status Register();
  void HeartbeatLoop();

  coord::CoordStore* store_;
  std::string path_;
  std::string info_;
  std::chrono::milliseconds timeout_;
  std::atomic<coord::SessionId> session_{0};
  std::atomic<uint64_t> reregistrations_{0};

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::string last_error_;  // guarded by mu_
  std::thread thread_;
};

}  // namespace kiln
