#include "server/coord/zk/zk_util.h"

#include <fmt/format.h>

#include "server/coord/path.h"

namespace kiln::coord::zk {

Status FromRc(int rc, const std::string& path) {
  switch (rc) {
    case ZOK: return Status::Ok();
    case ZNONODE: return NotFound(path + ": no such znode");
    case ZNODEEXISTS: return AlreadyExists(path + ": znode already exists");
    case ZBADVERSION:
      return Status(Code::kBadVersion, path + ": the znode is not at the expected version");
    case ZNOTEMPTY: return Status(Code::kNotEmpty, path + ": znode has children");
    case ZNOCHILDRENFOREPHEMERALS:
      return Status(Code::kNoChildrenForEphemerals,
                    fmt::format("{}: parent {} is ephemeral and cannot have children", path,
                                ParentPath(path)));
    case ZBADARGUMENTS: return InvalidArgument(path + ": ZooKeeper refused the arguments");
    case ZSESSIONEXPIRED:
      return Status(Code::kSessionExpired, path + ": the ZooKeeper session has expired");
    case ZCONNECTIONLOSS:
    case ZOPERATIONTIMEOUT:
    case ZCLOSING:
    case ZINVALIDSTATE:
    case ZSESSIONMOVED: return Unavailable(fmt::format("{}: ZooKeeper: {}", path, zerror(rc)));
    case ZMARSHALLINGERROR:
      return TooLarge(
          fmt::format("{}: ZooKeeper could not marshal the request ({})", path, zerror(rc)));
    default: return Internal(fmt::format("{}: ZooKeeper: {} ({})", path, zerror(rc), rc));
  }
}

Stat FromStat(const ::Stat& s) {
  Stat out;
  out.czxid = s.czxid;
  out.mzxid = s.mzxid;
  out.pzxid = s.pzxid;
  out.ctime_ms = s.ctime;
  out.mtime_ms = s.mtime;
  out.version = s.version;
  out.cversion = s.cversion;
  out.ephemeral_owner = s.ephemeralOwner;
  out.data_length = s.dataLength;
  out.num_children = s.numChildren;
  return out;
}

void Handle::Watcher(zhandle_t* /*zh*/, int type, int state, const char* /*path*/, void* ctx) {
  if (type != ZOO_SESSION_EVENT) return;
  auto* h = static_cast<Handle*>(ctx);
  std::function<void(int)> fn;
  {
    std::lock_guard lock(h->mu_);
    h->state_ = state;
    fn = h->on_state_;
  }
  h->cv_.notify_all();
  if (fn) fn(state);
}

Result<std::unique_ptr<Handle>> Handle::Connect(const std::string& hosts,
                                                std::chrono::milliseconds session_timeout,
                                                std::chrono::milliseconds connect_timeout,
                                                std::function<void(int)> on_state) {
  static std::once_flag quiet;
  std::call_once(quiet, [] { zoo_set_debug_level(ZOO_LOG_LEVEL_ERROR); });
  std::unique_ptr<Handle> h(new Handle);
  h->zh_ = zookeeper_init(hosts.c_str(), &Handle::Watcher,
                          static_cast<int>(session_timeout.count()), nullptr, h.get(), 0);
  if (!h->zh_) return Unavailable(fmt::format("zookeeper {}: cannot start a client", hosts));
  std::unique_lock lock(h->mu_);
  bool up = h->cv_.wait_for(lock, connect_timeout, [&] {
    return h->state_ == ZOO_CONNECTED_STATE || h->state_ == ZOO_EXPIRED_SESSION_STATE ||
           h->state_ == ZOO_AUTH_FAILED_STATE;
  });
  if (!up || h->state_ != ZOO_CONNECTED_STATE) {
    lock.unlock();
    return Unavailable(
        fmt::format("zookeeper {}: no session within {} ms", hosts, connect_timeout.count()));
  }
  h->on_state_ = std::move(on_state);
  return h;
}

Handle::~Handle() {
  if (zh_) zookeeper_close(zh_);
}

SessionId Handle::session_id() const {
  return zoo_client_id(zh_)->client_id;
}

std::chrono::milliseconds Handle::timeout() const {
  return std::chrono::milliseconds(zoo_recv_timeout(zh_));
}

}  // namespace kiln::coord::zk
