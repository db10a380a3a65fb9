#include "server/coord/coord_store.h"

#include <fmt/format.h>

#include <future>

#include "common/strings.h"
#include "server/coord/path.h"

namespace kiln::coord {

namespace {
thread_local int t_callback_depth = 0;

// Runs an asynchronous call and waits for its completion.
template <typename T, typename Start>
Result<T> Wait(const CoordStore* /*store*/, bool may_wait, std::string_view what, Start start) {
  if (!may_wait)
    return FailedPrecondition(fmt::format(
        "synchronous {} called from a coordination store callback would wait on its own "
        "thread; use the asynchronous call",
        what));
  std::promise<Result<T>> promise;
  auto future = promise.get_future();
  start([&promise](Result<T> r) { promise.set_value(std::move(r)); });
  return future.get();
}

Status WaitStatus(bool may_wait, std::string_view what,
                  const std::function<void(StatusCallback)>& start) {
  if (!may_wait)
    return FailedPrecondition(fmt::format(
        "synchronous {} called from a coordination store callback would wait on its own "
        "thread; use the asynchronous call",
        what));
  std::promise<Status> promise;
  auto future = promise.get_future();
  start([&promise](Status s) { promise.set_value(std::move(s)); });
  return future.get();
}
}  // namespace

bool InStoreCallback() { return t_callback_depth > 0; }
StoreCallbackScope::StoreCallbackScope() { ++t_callback_depth; }
StoreCallbackScope::~StoreCallbackScope() { --t_callback_depth; }

bool CoordStore::MayWaitHere(bool /*is_write*/) const { return !InStoreCallback(); }

std::string_view OpName(const Op& op) {
  static constexpr std::string_view kNames[] = {"create", "set", "delete", "check"};
  return kNames[op.index()];
}

const std::string& OpPath(const Op& op) {
  return std::visit([](const auto& o) -> const std::string& { return o.path; }, op);
}

std::string_view EventTypeName(EventType t) {
  switch (t) {
    case EventType::kCreated: return "created";
    case EventType::kDeleted: return "deleted";
    case EventType::kChanged: return "changed";
    case EventType::kChildren: return "children";
    case EventType::kNotWatching: return "not_watching";
  }
  return "unknown";
}

std::optional<EventType> EventTypeFromName(std::string_view name) {
  for (EventType t : {EventType::kCreated, EventType::kDeleted, EventType::kChanged,
                      EventType::kChildren, EventType::kNotWatching})
    if (EventTypeName(t) == name) return t;
  return std::nullopt;
}

Result<CreateResult> CoordStore::Create(CreateOp op) {
  return Wait<CreateResult>(this, MayWaitHere(true), "create", [&](Callback<CreateResult> cb) {
    CreateAsync(std::move(op), std::move(cb));
  });
}

Result<CreateResult> CoordStore::Create(const std::string& path, std::string data) {
  return Create(CreateOp{.path = path, .data = std::move(data)});
}

Result<SetResult> CoordStore::Set(SetOp op) {
  return Wait<SetResult>(this, MayWaitHere(true), "set",
                         [&](Callback<SetResult> cb) { SetAsync(std::move(op), std::move(cb)); });
}

Result<SetResult> CoordStore::Set(const std::string& path, std::string data, int32_t version) {
  return Set(SetOp{.path = path, .data = std::move(data), .version = version});
}

Status CoordStore::Delete(const std::string& path, int32_t version) {
  return WaitStatus(MayWaitHere(true), "delete", [&](StatusCallback cb) {
    DeleteAsync(DeleteOp{.path = path, .version = version}, std::move(cb));
  });
}

Result<MultiResult> CoordStore::Multi(std::vector<Op> ops) {
  return Wait<MultiResult>(this, MayWaitHere(true), "multi", [&](Callback<MultiResult> cb) {
    MultiAsync(std::move(ops), std::move(cb));
  });
}

Result<GetResult> CoordStore::Get(const std::string& path, Watcher watch) {
  return Wait<GetResult>(this, MayWaitHere(false), "get", [&](Callback<GetResult> cb) {
    GetAsync(path, std::move(watch), std::move(cb));
  });
}

Result<std::optional<Stat>> CoordStore::Exists(const std::string& path, Watcher watch) {
  return Wait<std::optional<Stat>>(this, MayWaitHere(false), "exists",
                                   [&](Callback<std::optional<Stat>> cb) {
                                     ExistsAsync(path, std::move(watch), std::move(cb));
                                   });
}

Result<ChildrenResult> CoordStore::Children(const std::string& path, Watcher watch) {
  return Wait<ChildrenResult>(this, MayWaitHere(false), "children",
                              [&](Callback<ChildrenResult> cb) {
                                ChildrenAsync(path, std::move(watch), std::move(cb));
                              });
}

Result<SessionInfo> CoordStore::CreateSession(std::chrono::milliseconds timeout) {
  return Wait<SessionInfo>(this, MayWaitHere(true), "create session",
                           [&](Callback<SessionInfo> cb) {
                             CreateSessionAsync(timeout, std::move(cb));
                           });
}

Status CoordStore::Heartbeat(SessionId id) {
  return WaitStatus(MayWaitHere(false), "heartbeat",
                    [&](StatusCallback cb) { HeartbeatAsync(id, std::move(cb)); });
}

Status CoordStore::CloseSession(SessionId id) {
  return WaitStatus(MayWaitHere(true), "close session",
                    [&](StatusCallback cb) { CloseSessionAsync(id, std::move(cb)); });
}

Status CoordStore::EnsurePath(const std::string& path) {
  KILN_RETURN_IF_ERROR(ValidatePath(path));
  if (path == "/") return Status::Ok();
  // Walk down from the root so each parent exists before its child.
  size_t pos = 1;
  while (pos <= path.size()) {
    size_t slash = path.find('/', pos);
    if (slash == std::string::npos) slash = path.size();
    std::string prefix = path.substr(0, slash);
    auto exists = Exists(prefix);
    if (!exists.ok()) return exists.status();
    if (!exists->has_value()) {
      auto created = Create(prefix);
      if (!created.ok() && created.status().code() != Code::kAlreadyExists)
        return created.status();
    }
    pos = slash + 1;
  }
  return Status::Ok();
}

Result<CoordUrl> ParseCoordUrl(const std::string& url) {
  CoordUrl out;
  if (StartsWith(url, "embedded:")) {
    out.kind = CoordUrl::Kind::kEmbedded;
    out.dir = url.substr(9);
    if (out.dir.empty())
      return InvalidArgument("coordination URL \"" + url + "\": embedded: needs a directory");
    return out;
  }
  if (StartsWith(url, "zk://")) {
    out.kind = CoordUrl::Kind::kZooKeeper;
    std::string rest = url.substr(5);
    size_t slash = rest.find('/');
    out.hosts = rest.substr(0, slash);
    if (slash != std::string::npos) out.chroot = rest.substr(slash);
    if (out.chroot == "/") out.chroot.clear();
    if (out.hosts.empty())
      return InvalidArgument("coordination URL \"" + url + "\": zk:// needs host:port");
    for (const auto& hp : Split(out.hosts, ',')) {
      size_t colon = hp.rfind(':');
      if (hp.empty() || colon == std::string::npos || colon == 0 ||
          !ParseUint(hp.substr(colon + 1)) || *ParseUint(hp.substr(colon + 1)) == 0 ||
          *ParseUint(hp.substr(colon + 1)) > 65535)
        return InvalidArgument("coordination URL \"" + url + "\": \"" + hp +
                               "\" is not host:port");
    }
    if (!out.chroot.empty()) {
      Status s = ValidatePath(out.chroot);
      if (!s.ok()) return InvalidArgument("coordination URL \"" + url + "\": chroot " + s.message());
    }
    return out;
  }
  return InvalidArgument("coordination URL \"" + url +
                         "\": expected embedded:DIR or zk://host:port[,host:port]/chroot");
}

}  // namespace kiln::coord
