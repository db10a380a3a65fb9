#include "server/coord/recipes/lock.h"

#include <algorithm>
#include <condition_variable>
#include <memory>
#include <mutex>

#include "server/coord/path.h"
#include "server/coord/recipes/sequence.h"

namespace kiln::coord::recipes {
namespace {

// Set by a one-shot watcher, awaited by Acquire. Shared, because the
// watcher may fire after Acquire gave up and returned.
struct Signal {
  std::mutex mu;
  std::condition_variable cv;
  bool fired = false;

  void Notify() {
    std::lock_guard lock(mu);
    fired = true;
    cv.notify_all();
  }
  bool WaitUntil(std::chrono::steady_clock::time_point deadline) {
    std::unique_lock lock(mu);
    return cv.wait_until(lock, deadline, [&] { return fired; });
  }
};

}  // namespace

Lock::Lock(CoordStore& store, std::string dir, SessionId session)
    : store_(store), dir_(std::move(dir)), session_(session) {}

Lock::~Lock() {
  if (held() && !InStoreCallback()) (void)Unlock();
}

Status Lock::Acquire(std::chrono::milliseconds timeout) {
  if (held()) return FailedPrecondition("lock " + dir_ + ": already held as " + node_);
  if (dir_ == "/") return InvalidArgument("lock directory must not be the root");
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  KILN_RETURN_IF_ERROR(store_.EnsurePath(dir_));
  KILN_ASSIGN_OR_RETURN(auto created, store_.Create(CreateOp{.path = JoinPath(dir_, "lock-"),
                                                             .ephemeral = true,
                                                             .sequential = true,
                                                             .session = session_}));
  const std::string mine(BaseName(created.path));
  // Leaves the queue on failure, so later contenders do not wait on us.
  auto withdraw = [&](Status s) {
    Status d = store_.Delete(created.path);
    (void)d;  // kNotFound: the session already took it away
    return s;
  };
  for (;;) {
    auto kids = store_.Children(dir_);
    if (!kids.ok()) return withdraw(kids.status());
    auto order = SortBySequence(std::move(kids->children));
    auto it = std::find(order.begin(), order.end(), mine);
    if (it == order.end()) {
      return Status(Code::kSessionExpired, "lock " + dir_ + ": contender " + created.path +
                                               " vanished while waiting (its session ended)");
    }
    if (it == order.begin()) {
      node_ = created.path;
      return Status::Ok();
    }
    // Watch only the predecessor: when it goes (unlock, expiry, or its own
    // timeout), re-read the queue; we may still have others before us.
    auto signal = std::make_shared<Signal>();
    auto prev =
        store_.Exists(JoinPath(dir_, *(it - 1)), [signal](const WatchEvent&) { signal->Notify(); });
    if (!prev.ok()) return withdraw(prev.status());
    if (!prev->has_value()) continue;  // gone between the two reads
    if (!signal->WaitUntil(deadline)) {
      return withdraw(Timeout("lock " + dir_ + ": not acquired within " +
                              std::to_string(timeout.count()) + " ms (waiting behind " + *(it - 1) +
                              ")"));
    }
  }
}

Status Lock::Unlock() {
  if (!held()) return FailedPrecondition("lock " + dir_ + ": not held");
  Status s = store_.Delete(node_);
  if (!s.ok() && s.code() != Code::kNotFound) return s;
  node_.clear();
  return Status::Ok();
}

}  // namespace kiln::coord::recipes
