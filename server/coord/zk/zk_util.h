#pragma once
// Small pieces shared by the zookeeper backend's files: error and stat
// conversion, and a ZooKeeper session handle.

#include <zookeeper/zookeeper.h>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "common/status.h"
#include "server/coord/coord_types.h"

namespace kiln::coord::zk {

// ZooKeeper's return code as kiln's Status, with a message naming path.
Status FromRc(int rc, const std::string& path);
Stat FromStat(const ::Stat& s);

// One ZooKeeper session: a zhandle_t and the state its watcher reports.
// Closing it (the destructor) ends the session, deleting its ephemerals,
// and runs every pending completion with ZCLOSING.
class Handle {
 public:
  // Connects and waits until the session is established or
  // connect_timeout passes (kUnavailable naming the hosts). on_state runs
  // on the completion thread for every later state change
  // (ZOO_EXPIRED_SESSION_STATE, ZOO_CONNECTING_STATE, ...).
  static Result<std::unique_ptr<Handle>> Connect(const std::string& hosts,
                                                 std::chrono::milliseconds session_timeout,
                                                 std::chrono::milliseconds connect_timeout,
                                                 std::function<void(int state)> on_state);
  ~Handle();
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;

  zhandle_t* zh() const { return zh_; }
  SessionId session_id() const;
  std::chrono::milliseconds timeout() const;

 private:
  Handle() = default;
  static void Watcher(zhandle_t* zh, int type, int state, const char* path, void* ctx);

  zhandle_t* zh_ = nullptr;
  std::mutex mu_;
  std::condition_variable cv_;
  int state_ = 0;
  std::function<void(int)> on_state_;
};

}  // namespace kiln::coord::zk
